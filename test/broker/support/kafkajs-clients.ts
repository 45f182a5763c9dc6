/**
 * kafkajs set up for tests: quiet, quick to retry, and a way to read a topic from the start
 * into an array with a throwaway consumer group.
 */
import { Kafka, logLevel, type Admin, type ConsumerConfig, type KafkaConfig, type Producer } from 'kafkajs';
import { startTestBroker, uniqueName, waitFor, type TestBroker } from '../../helpers/broker.js';

export function testKafka(bootstrap: string, over: Partial<KafkaConfig> = {}): Kafka {
  return new Kafka({
    brokers: [bootstrap],
    clientId: uniqueName('test-client'),
    logLevel: logLevel.NOTHING,
    retry: { retries: 8, initialRetryTime: 50, maxRetryTime: 1000 },
    ...over,
  });
}

/** Consumer settings that keep tests quick: short long-polls, short sessions. */
export const FAST_CONSUMER: Omit<ConsumerConfig, 'groupId'> = {
  maxWaitTimeInMs: 100,
  sessionTimeout: 6000,
  heartbeatInterval: 500,
  rebalanceTimeout: 10_000,
};

export interface ConsumedRecord {
  partition: number;
  offset: number;
  key: string | null;
  value: string | null;
  headers: Record<string, string>;
  timestamp: number;
}

/**
 * Reads `topic` from the beginning with a fresh group until `count` records arrived (or
 * `timeoutMs` passes), then disconnects. Records are returned in arrival order.
 */
export async function consumeAll(kafka: Kafka, topic: string, count: number, timeoutMs = 15_000): Promise<ConsumedRecord[]> {
  const consumer = kafka.consumer({ groupId: uniqueName('reader'), ...FAST_CONSUMER });
  const got: ConsumedRecord[] = [];
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        got.push({
          partition,
          offset: Number(message.offset),
          key: message.key?.toString() ?? null,
          value: message.value?.toString() ?? null,
          headers: Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, v?.toString() ?? ''])),
          timestamp: Number(message.timestamp),
        });
      },
    });
    await waitFor(() => got.length >= count, timeoutMs, `${count} records from ${topic} (got ${got.length})`);
  } finally {
    await consumer.disconnect();
  }
  return got;
}

export interface BrokerClients {
  broker: TestBroker;
  kafka: Kafka;
  admin: Admin;
  producer: Producer;
}

/** The setup most broker tests share: a fresh broker with a connected admin and producer. */
export async function startBrokerWithClients(): Promise<BrokerClients> {
  const broker = await startTestBroker();
  const kafka = testKafka(broker.bootstrap);
  const admin = kafka.admin();
  const producer = kafka.producer();
  await Promise.all([admin.connect(), producer.connect()]);
  return { broker, kafka, admin, producer };
}
