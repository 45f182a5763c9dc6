/**
 * Pieces the sink tests share: configuration pointing at the test broker, producing events
 * (and malformed records) to a topic, reading committed offsets and dead letters back, and a
 * ClickHouse writer that can be made to fail or hang on demand.
 */
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { loadPostlineConfig, type PostlineConfig } from '../../../shared/config.js';
import type { EventsWriter } from '../../../services/analytics/sink/events-writer.js';
import { EmailEventContract, type EmailEvent } from '../../../shared/contracts/email-event.js';
import { DeadLetterContract, type DeadLetter } from '../../../shared/contracts/dead-letter.js';
import { Topics } from '../../../shared/topics.js';
import { uniqueName } from '../../helpers/broker.js';

export function analyticsConfig(bootstrap: string, overrides: Record<string, unknown> = {}): PostlineConfig {
  return loadPostlineConfig({
    env: {},
    overrides: {
      'log.level': process.env.LOG_LEVEL ?? 'silent',
      'kafka.brokers': [bootstrap],
      'kafka.partitions': 2,
      'ops.shutdownGraceMs': 6000,
      'analytics.groupId': uniqueName('analytics'),
      'analytics.batchMaxWaitMs': 100,
      'analytics.insertRetryMaxMs': 200,
      ...overrides,
    },
  });
}

export function testKafka(bootstrap: string): Kafka {
  return new Kafka({ brokers: [bootstrap], logLevel: logLevel.NOTHING, clientId: 'analytics-test' });
}

export async function createTopic(admin: Admin, topic: string, partitions: number): Promise<void> {
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: partitions }] });
}

/** Produces records keyed by message id (as every stage does); strings are sent verbatim. */
export async function produce(kafka: Kafka, topic: string, records: Array<EmailEvent | string>): Promise<void> {
  const producer = kafka.producer();
  await producer.connect();
  try {
    for (let i = 0; i < records.length; i += 1000) {
      const messages = records.slice(i, i + 1000).map((r, j) =>
        typeof r === 'string' ? { key: `bad-${i + j}`, value: r } : { key: r.messageId, value: EmailEventContract.encode(r) },
      );
      await producer.send({ topic, messages });
    }
  } finally {
    await producer.disconnect();
  }
}

/** Sum over partitions of the group's committed offsets (-1, "none", counts as 0). */
export async function committedTotal(admin: Admin, groupId: string, topic: string): Promise<number> {
  const [t] = await admin.fetchOffsets({ groupId, topics: [topic] });
  return (t?.partitions ?? []).reduce((n, p) => n + Math.max(0, Number(p.offset)), 0);
}

export async function endOffsetsTotal(admin: Admin, topic: string): Promise<number> {
  return (await admin.fetchTopicOffsets(topic)).reduce((n, p) => n + Number(p.high), 0);
}

/** Dead letters whose source is `sourceTopic`, read from the start of email.dead. */
export async function deadLettersFrom(kafka: Kafka, sourceTopic: string, expected: number, timeoutMs = 15_000): Promise<DeadLetter[]> {
  const consumer = kafka.consumer({ groupId: uniqueName('dead-reader'), maxWaitTimeInMs: 100 });
  const found: DeadLetter[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic: Topics.dead, fromBeginning: true });
  const done = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${found.length} of ${expected} dead letters from ${sourceTopic} within ${timeoutMs} ms`)), timeoutMs);
    void consumer.run({
      eachMessage: async ({ message }) => {
        const letter = DeadLetterContract.decode(message.value);
        if (letter.source.topic === sourceTopic) found.push(letter);
        if (found.length >= expected) {
          clearTimeout(timer);
          resolve();
        }
      },
    });
  });
  try {
    await done;
  } finally {
    await consumer.disconnect();
  }
  return found;
}

/** A writer in front of the real one that can fail ("down") or hang ("slow") until told otherwise. */
export class FaultyWriter implements EventsWriter {
  mode: 'up' | 'down' | 'hang' = 'up';
  attempts = 0;
  lookups = 0;
  private released: Array<() => void> = [];

  private inner!: EventsWriter;

  /** For `wrapWriter`: puts this in front of the real writer. */
  readonly wrap = (inner: EventsWriter): EventsWriter => {
    this.inner = inner;
    return this;
  };

  async insert(rows: Parameters<EventsWriter['insert']>[0], token: string): Promise<void> {
    this.attempts++;
    if (this.mode === 'down') throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8123'), { code: 'ECONNREFUSED' });
    if (this.mode === 'hang') await new Promise<void>((r) => this.released.push(r));
    return this.inner.insert(rows, token);
  }

  storedOffsets(topic: string, partition: number, from: string): Promise<Set<string>> {
    this.lookups++;
    if (this.mode === 'down') return Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:8123'));
    return this.inner.storedOffsets(topic, partition, from);
  }

  ping(): Promise<void> {
    return this.mode === 'up' ? this.inner.ping() : Promise.reject(new Error('unavailable'));
  }

  /** Back to normal; inserts that were hanging go through. */
  recover(): void {
    this.mode = 'up';
    for (const r of this.released.splice(0)) r();
  }
}
