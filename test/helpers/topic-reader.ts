/**
 * Reads what is on a topic, for assertions: a consumer in a group of its own from the beginning,
 * collecting records until a condition holds or time runs out.
 */
import { Kafka, logLevel, type KafkaMessage } from 'kafkajs';
import { randomUUID } from 'node:crypto';

export interface Collected {
  topic: string;
  partition: number;
  message: KafkaMessage;
  receivedAt: number;
}

export class TopicReader {
  readonly records: Collected[] = [];
  private consumer;

  constructor(bootstrap: string, private readonly topics: string[]) {
    const kafka = new Kafka({ brokers: [bootstrap], clientId: 'test-reader', logLevel: logLevel.NOTHING });
    this.consumer = kafka.consumer({ groupId: `test-reader-${randomUUID()}`, maxWaitTimeInMs: 100 });
  }

  async start(): Promise<this> {
    await this.consumer.connect();
    for (const topic of this.topics) await this.consumer.subscribe({ topic, fromBeginning: true });
    await this.consumer.run({
      eachMessage: async ({ topic, partition, message }) => {
        this.records.push({ topic, partition, message, receivedAt: Date.now() });
      },
    });
    return this;
  }

  /** Records on `topic` whose JSON value is parsed. */
  json<T = Record<string, unknown>>(topic: string): T[] {
    return this.records.filter((r) => r.topic === topic && r.message.value).map((r) => JSON.parse(r.message.value!.toString('utf8')) as T);
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect();
  }
}
