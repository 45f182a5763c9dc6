/**
 * What the ingest integration tests share: an embedded broker, config with two tenants' keys,
 * ingest instances started in-process (closed in `stop`), a collector that reads what reached
 * email.requested and email.events, and the topics' end offsets (for "nothing was produced").
 */
import { Kafka, logLevel, type Admin, type Consumer, type KafkaMessage } from 'kafkajs';
import { loadPostlineConfig, type PostlineConfig } from '../../shared/config.js';
import { Topics, requestTopics } from '../../shared/topics.js';
import { startIngest, type IngestHandle, type StartIngestOptions } from '../../services/ingest/main.js';
import { hashApiKey } from '../../services/ingest/api-keys.js';
import { startTestBroker, uniqueName, waitFor, type TestBroker } from '../helpers/broker.js';

/** `acme/eu` is a tenant of its own whose name extends `acme`'s (the cross-tenant regression tests). */
export const KEYS = { acme: 'pl_test_acme_key_0123456789', globex: 'pl_test_globex_key_9876543210', 'acme/eu': 'pl_test_acme_eu_key_0246813579' } as const;

export const auth = (tenant: keyof typeof KEYS) => ({ authorization: `Bearer ${KEYS[tenant]}` });

/** A minimal valid send request. */
export const email = (extra: Record<string, unknown> = {}) => ({
  from: 'Sender <sender@example.com>',
  to: ['rcpt@example.org'],
  subject: 'Hello',
  text: 'Hi there',
  ...extra,
});

export interface Collected {
  key: string | null;
  value: Record<string, unknown>;
  message: KafkaMessage;
}

export class IngestHarness {
  readonly instances: IngestHandle[] = [];
  readonly records = new Map<string, Collected[]>();
  kafka!: Kafka;
  admin!: Admin;
  private consumer?: Consumer;

  private constructor(public broker: TestBroker) {}

  static async start(): Promise<IngestHarness> {
    const h = new IngestHarness(await startTestBroker());
    h.kafka = new Kafka({ clientId: 'ingest-test', brokers: [h.broker.bootstrap], logLevel: logLevel.NOTHING });
    h.admin = h.kafka.admin();
    await h.admin.connect();
    return h;
  }

  config(overrides: Record<string, unknown> = {}): PostlineConfig {
    return loadPostlineConfig({
      env: {},
      overrides: {
        'log.level': process.env.LOG_LEVEL ?? 'silent',
        'kafka.brokers': [this.broker.bootstrap],
        'kafka.partitions': 2,
        'ingest.host': '127.0.0.1',
        'ingest.port': 0,
        'ops.host': '127.0.0.1',
        'ops.port': 0,
        'ingest.apiKeys': Object.entries(KEYS).map(([tenant, key]) => ({ tenant, keyHash: hashApiKey(key) })),
        ...overrides,
      },
    });
  }

  /** An ingest instance (a "replica"); closed by `stop` unless closed before. */
  async ingest(overrides: Record<string, unknown> = {}, opts: StartIngestOptions = { listen: false }): Promise<IngestHandle> {
    const handle = await startIngest(this.config(overrides), opts);
    this.instances.push(handle);
    return handle;
  }

  /** Starts reading email.requested and email.events from the beginning (topics must exist). */
  async collect(): Promise<void> {
    this.consumer = this.kafka.consumer({ groupId: uniqueName('ingest-test'), maxWaitTimeInMs: 100 });
    await this.consumer.connect();
    for (const topic of [...requestTopics(), Topics.events]) await this.consumer.subscribe({ topic, fromBeginning: true });
    await this.consumer.run({
      eachMessage: async ({ topic: read, message }) => {
        // Ingest produces to each priority's request lane; tests read them all as Topics.requested.
        const topic = requestTopics().includes(read) ? Topics.requested : read;
        const list = this.records.get(topic) ?? [];
        list.push({ key: message.key?.toString() ?? null, value: JSON.parse(message.value?.toString() ?? 'null'), message });
        this.records.set(topic, list);
      },
    });
  }

  /** Records seen on `topic` with key `key`. */
  on(topic: string, key: string): Collected[] {
    return (this.records.get(topic) ?? []).filter((r) => r.key === key);
  }

  /** Waits until `topic` holds a record keyed `key` and returns them all. */
  waitForKey(topic: string, key: string, timeoutMs = 10_000): Promise<Collected[]> {
    return waitFor(() => (this.on(topic, key).length > 0 ? this.on(topic, key) : undefined), timeoutMs, `a record keyed ${key} on ${topic}`);
  }

  /** Waits until the collector has read everything on email.requested and email.events so far. */
  async caughtUp(timeoutMs = 10_000): Promise<void> {
    const ends = [await this.endOffset(Topics.requested), await this.endOffset(Topics.events)];
    await waitFor(
      () => (this.records.get(Topics.requested)?.length ?? 0) >= ends[0] && (this.records.get(Topics.events)?.length ?? 0) >= ends[1],
      timeoutMs,
      'the collector to read both topics to their end',
    );
  }

  /** Sum of the end offsets of `topic`: it changes exactly when something was produced. */
  async endOffset(topic: string): Promise<number> {
    // Topics.requested stands for every request lane (see collect).
    let sum = 0;
    for (const t of topic === Topics.requested ? requestTopics() : [topic]) sum += (await this.admin.fetchTopicOffsets(t)).reduce((s, o) => s + Number(o.high), 0);
    return sum;
  }

  /** Stops the broker, keeping its data (clients see it go away). */
  async stopBroker(): Promise<void> {
    await this.broker.close();
  }

  /** Starts the broker again on the same port and data. */
  async restartBroker(): Promise<void> {
    this.broker = await startTestBroker({ port: this.broker.port, dataDir: this.broker.dataDir });
  }

  async stop(): Promise<void> {
    for (const i of this.instances) await i.close();
    await this.consumer?.disconnect();
    await this.admin.disconnect();
    await this.broker.destroy();
  }
}
