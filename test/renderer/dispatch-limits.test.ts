/**
 * Limits that agree end to end (issue 16 item 1): the dispatch topics Postline creates accept
 * what the renderer renders, and a rendered message that would not fit its dispatch topic's
 * real `max.message.bytes` is dead-lettered MESSAGE_TOO_LARGE with a `failed` event, while the
 * records behind it go on. Real broker throughout.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { Kafka, logLevel, type Admin, type Producer } from 'kafkajs';
import { startTestBroker, uniqueName, waitFor, type TestBroker } from '../helpers/broker.js';
import { TopicReader } from '../helpers/topic-reader.js';
import { loadPostlineConfig, type PostlineConfig } from '../../shared/config.js';
import { Topics, recordLimitFor, topicSpecs } from '../../shared/topics.js';
import { BatchingProducer } from '../../shared/kafka/batching-producer.js';
import { EventPublisher } from '../../shared/events.js';
import { EmailRequestedContract, type EmailRequested } from '../../shared/contracts/email-requested.js';
import type { EmailReadyForDispatch } from '../../shared/contracts/email-ready-for-dispatch.js';
import type { EmailEvent } from '../../shared/contracts/email-event.js';
import type { DeadLetter } from '../../shared/contracts/dead-letter.js';
import { Renderer } from '../../services/renderer/renderer.js';
import { readTopicLimits } from '../../services/renderer/topic-limits.js';
import { startRenderer, type RunningRenderer } from '../../services/renderer/main.js';
import { emailRequest } from './email-requests.js';

const silent = pino({ level: process.env.LOG_LEVEL ?? 'silent' });
const SMALL = 100_000;
/** The message: 450,000 × "é" (≈ 900 KB of UTF-8), ~1.2 MB once rendered. */
const bigHtml = (): string => `<p>${'é'.repeat(450_000)}</p>`;

let broker: TestBroker;
let kafka: Kafka;
let admin: Admin;
let producer: Producer;

before(async () => {
  broker = await startTestBroker();
  kafka = new Kafka({ brokers: [broker.bootstrap], clientId: 'limits-test', logLevel: logLevel.NOTHING });
  admin = kafka.admin();
  await admin.connect();
  producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
});

after(async () => {
  await producer?.disconnect();
  await admin?.disconnect();
  await broker?.destroy();
});

const configFor = (extra: Record<string, unknown> = {}): PostlineConfig =>
  loadPostlineConfig({ env: {}, overrides: { 'log.level': 'silent', 'kafka.brokers': [broker.bootstrap], 'kafka.partitions': 1, 'ops.host': '127.0.0.1', 'ops.port': 0, ...extra } });

/** Does this broker answer DescribeConfigs? (kafkajs refuses before sending when it does not.) */
async function describesConfigs(topic: string): Promise<boolean> {
  try {
    await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: 2, name: topic }] });
    return true;
  } catch {
    return false;
  }
}

describe('dispatch topic limits', () => {
  test('the dispatch, retry and dead topics are created to accept the largest message the renderer renders', () => {
    const specs = topicSpecs(3, { maxMessageBytes: 25 * 1024 * 1024 });
    const limitOf = (topic: string) => Number(specs.find((s) => s.topic === topic)?.configEntries.find((c) => c.name === 'max.message.bytes')?.value);
    for (const topic of [Topics.dispatch('bulk'), Topics.retryFor('critical', '1h'), Topics.retry('5m'), Topics.dead]) {
      assert.equal(limitOf(topic), recordLimitFor(25 * 1024 * 1024), topic);
      assert.ok(limitOf(topic) > 25 * 1024 * 1024 * 1.2, `${topic}: room for the JSON envelope`);
    }
  });

  test('readTopicLimits: the broker’s max.message.bytes, or the configured fallback when it does not describe topics', async () => {
    const topic = uniqueName('limited');
    await admin.createTopics({ topics: [{ topic, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: String(SMALL) }] }] });
    const limits = await readTopicLimits({ admin, topics: [topic], fallback: 12_345, logger: silent });
    if (await describesConfigs(topic)) assert.deepEqual(limits, { bytes: { [topic]: SMALL }, source: { [topic]: 'broker' } });
    else assert.deepEqual(limits, { bytes: { [topic]: 12_345 }, source: { [topic]: 'configured' } });
  });

  test('a message rendered too large for its dispatch topic is dead-lettered MESSAGE_TOO_LARGE with a failed event; the next one is dispatched', async () => {
    // A topic of its own, created as a too-small dispatch topic would be; the Renderer is told its limit.
    const topic = Topics.dispatch('transactional');
    await admin.createTopics({ topics: [{ topic, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: String(SMALL) }] }, { topic: Topics.dead, numPartitions: 1 }, { topic: Topics.events, numPartitions: 1 }] });
    const reader = await new TopicReader(broker.bootstrap, [topic, Topics.dead, Topics.events]).start();
    const raw = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await raw.connect();
    const batching = new BatchingProducer(raw);
    const renderer = new Renderer({
      templates: { compiled: () => Promise.reject(new Error('inline content only in this test')) },
      producer: batching,
      events: new EventPublisher(batching, 'renderer'),
      logger: silent,
      limits: { maxRecordBytes: 32 * 1024 * 1024, maxMessageBytes: 25 * 1024 * 1024, dispatchTopicBytes: { [topic]: SMALL } },
    });
    try {
      const big = emailRequest({ html: `<p>${'é'.repeat(60_000)}</p>`, text: undefined });
      const small = emailRequest();
      const asRecord = (req: EmailRequested, offset: string) => ({ topic: Topics.requested, partition: 0, message: { key: Buffer.from(req.messageId), value: EmailRequestedContract.encode(req), offset, timestamp: '0', attributes: 0, headers: {} } });
      await renderer.handle(asRecord(big, '0'));
      await renderer.handle(asRecord(small, '1'));
      const dead = await waitFor(() => reader.json<DeadLetter>(Topics.dead).find((d) => d.messageId === big.messageId), 10_000, 'dead letter');
      assert.equal(dead.code, 'MESSAGE_TOO_LARGE');
      assert.match(dead.reason, new RegExp(`${topic.replace(/\./g, '\\.')} accepts at most ${SMALL}`));
      const failed = await waitFor(() => reader.json<EmailEvent>(Topics.events).find((e) => e.messageId === big.messageId && e.type === 'failed'), 10_000, 'failed event');
      assert.match(failed.reason!, /^MESSAGE_TOO_LARGE: /);
      await waitFor(() => reader.json<EmailReadyForDispatch>(topic).some((d) => d.messageId === small.messageId), 10_000, 'the next message dispatched');
      assert.equal(reader.json<EmailReadyForDispatch>(topic).filter((d) => d.messageId === big.messageId).length, 0, 'nothing of the big one was dispatched');
    } finally {
      await batching.drain();
      await raw.disconnect();
      await reader.stop();
      await admin.deleteTopics({ topics: [topic, Topics.dead, Topics.events] }).catch(() => undefined);
    }
  });

  test('the issue’s 900 KB email renders to ~1.2 MB and is dispatched: the topics Postline creates accept it', async () => {
    const config = configFor({ 'kafka.createTopics': true });
    const renderer = await startRenderer(config, { logger: silent, groupId: uniqueName('renderer'), ops: false });
    const reader = await new TopicReader(broker.bootstrap, [Topics.dispatch('transactional'), Topics.dead]).start();
    try {
      const req = emailRequest({ html: bigHtml(), text: undefined });
      const next = emailRequest();
      await producer.send({ topic: Topics.requestedFor('transactional'), acks: -1, messages: [req, next].map((r) => ({ key: r.messageId, value: EmailRequestedContract.encode(r) })) });
      const [d] = await waitFor(() => {
        const got = reader.json<EmailReadyForDispatch>(Topics.dispatch('transactional')).filter((x) => x.messageId === req.messageId);
        return got.length > 0 ? got : undefined;
      }, 30_000, 'the large message dispatched');
      assert.ok(d.raw.length > 1024 * 1024, `rendered ${d.raw.length} bytes: over Kafka's default 1 MiB`);
      await waitFor(() => reader.json<EmailReadyForDispatch>(Topics.dispatch('transactional')).some((x) => x.messageId === next.messageId), 10_000, 'the next message');
      assert.deepEqual(reader.json<DeadLetter>(Topics.dead).filter((x) => x.messageId === req.messageId), []);
    } finally {
      await reader.stop();
      await renderer.close();
    }
  });

  test('the renderer reads the dispatch topic’s real limit at start-up and dead-letters what would not fit it', async () => {
    // Another broker, so this topic exists before the renderer creates the rest.
    const b2 = await startTestBroker();
    const k2 = new Kafka({ brokers: [b2.bootstrap], logLevel: logLevel.NOTHING });
    const a2 = k2.admin();
    await a2.connect();
    const p2 = k2.producer({ idempotent: true, maxInFlightRequests: 1 });
    await p2.connect();
    let renderer: RunningRenderer | undefined;
    let reader: TopicReader | undefined;
    try {
      await a2.createTopics({ topics: [{ topic: Topics.dispatch('bulk'), numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: String(SMALL) }] }] });
      const config = loadPostlineConfig({ env: {}, overrides: { 'log.level': 'silent', 'kafka.brokers': [b2.bootstrap], 'kafka.partitions': 1, 'kafka.createTopics': true } });
      renderer = await startRenderer(config, { logger: silent, groupId: uniqueName('renderer'), ops: false });
      assert.equal(renderer.dispatchLimits.source[Topics.dispatch('bulk')], 'broker', 'the limit comes from DescribeConfigs');
      assert.equal(renderer.dispatchLimits.bytes[Topics.dispatch('bulk')], SMALL);
      reader = await new TopicReader(b2.bootstrap, [Topics.dispatch('bulk'), Topics.dead, Topics.events]).start();
      const big = emailRequest({ priority: 'bulk', html: bigHtml(), text: undefined });
      const next = emailRequest({ priority: 'bulk' });
      await p2.send({ topic: Topics.requestedFor('bulk'), acks: -1, messages: [big, next].map((r) => ({ key: 'same', value: EmailRequestedContract.encode(r) })) });
      const dead = await waitFor(() => reader!.json<DeadLetter>(Topics.dead).find((d) => d.messageId === big.messageId), 20_000, 'dead letter');
      assert.equal(dead.code, 'MESSAGE_TOO_LARGE');
      await waitFor(() => reader!.json<EmailEvent>(Topics.events).some((e) => e.messageId === big.messageId && e.type === 'failed'), 10_000, 'failed event');
      await waitFor(() => reader!.json<EmailReadyForDispatch>(Topics.dispatch('bulk')).some((d) => d.messageId === next.messageId), 10_000, 'the next message');
    } finally {
      await reader?.stop();
      await renderer?.close();
      await p2.disconnect();
      await a2.disconnect();
      await b2.destroy();
    }
  });
});
