/**
 * The shared stream mechanics when records cannot be processed, through the real (embedded)
 * broker: the producer fails only the record the broker refuses, the stage consumer parks a
 * permanently failing record on `email.dead` and moves on, and liveness follows the consumer.
 */
import { test, before, after } from 'node:test';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { Kafka, logLevel, type Consumer, type Producer } from 'kafkajs';
import pino from 'pino';
import { startTestBroker, uniqueName, waitFor, type TestBroker } from '../helpers/broker.js';
import { TopicReader } from '../helpers/topic-reader.js';
import { BatchingProducer } from '../../shared/kafka/batching-producer.js';
import { StageConsumer } from '../../shared/kafka/stage-consumer.js';
import { EventPublisher } from '../../shared/events.js';
import { CompactedTable } from '../../shared/kafka/compacted-table.js';
import { readTopicRange } from '../../shared/kafka/topic-range.js';
import { PermanentError } from '../../shared/errors.js';
import { Topics } from '../../shared/topics.js';
import { loadPostlineConfig } from '../../shared/config.js';
import { startRuntime } from '../../shared/service-runtime.js';
import type { DeadLetter } from '../../shared/contracts/dead-letter.js';
import type { EmailEvent } from '../../shared/contracts/email-event.js';
import { corruptStoredBatch, produceGzipBatch } from '../faults/poison-records.js';

const logger = pino({ level: 'silent' });
let broker: TestBroker;
let kafka: Kafka;

before(async () => {
  broker = await startTestBroker();
  kafka = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
});
after(() => broker.destroy());

async function createTopic(topic: string, configEntries: Array<{ name: string; value: string }> = [], numPartitions = 1): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions, configEntries }] });
  await admin.disconnect();
}

async function memberOf(groupId: string): Promise<boolean> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const { groups } = await admin.describeGroups([groupId]);
    return groups[0]?.state === 'Stable' && groups[0].members.length > 0;
  } finally {
    await admin.disconnect();
  }
}

test('BatchingProducer: a record the broker refuses fails alone with a PermanentError; the records merged with it are written', async () => {
  const topic = uniqueName('refuse');
  // Small records share a batch that the topic refuses as a whole; the 3 KB one is refused alone.
  await createTopic(topic, [{ name: 'max.message.bytes', value: '2000' }]);
  const raw = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await raw.connect();
  const producer = new BatchingProducer(raw, { lingerMs: 20 });
  const values = ['a', 'b', 'big', 'c'].map((v) => (v === 'big' ? 'x'.repeat(3000) : v.repeat(700)));
  const results = await Promise.allSettled(values.map((value, i) => producer.send(topic, { key: `k${i}`, value })));
  assert.deepEqual(
    results.map((r) => r.status),
    ['fulfilled', 'fulfilled', 'rejected', 'fulfilled'],
  );
  const refused = (results[2] as PromiseRejectedResult).reason;
  assert.ok(refused instanceof PermanentError, `refused with ${refused}`);
  assert.equal(refused.code, 'MESSAGE_TOO_LARGE');
  // The producer goes on: a later record is written too.
  await producer.send(topic, { key: 'after', value: 'after' });
  const admin = kafka.admin();
  await admin.connect();
  const [end] = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  assert.equal(end.high, '4', 'a, b, c and the later record are on the topic');
  await producer.drain();
  await raw.disconnect();
});

test('StageConsumer: a record whose handler fails permanently is dead-lettered with its reason and the stage moves on', async () => {
  const topic = uniqueName('poison');
  const groupId = uniqueName('group');
  await createTopic(topic);
  const raw = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await raw.connect();
  const producer = new BatchingProducer(raw);
  const reader = await new TopicReader(broker.bootstrap, [Topics.dead, Topics.events]).start();
  const messages = Array.from({ length: 10 }, (_, i) => ({ key: `m${i}`, value: JSON.stringify({ messageId: `${topic}-m${i}`, tenant: 'acme', n: i }) }));
  await raw.send({ topic, messages });

  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
  await consumer.connect();
  const handled: number[] = [];
  const stage = new StageConsumer({
    consumer,
    topics: [topic],
    concurrency: 4,
    logger,
    deadLetters: new EventPublisher(producer, 'test-stage'),
    handle: async ({ message }) => {
      const { n } = JSON.parse(message.value!.toString()) as { n: number };
      if (n === 3) throw new PermanentError('RENDER_FAILED', 'the template threw');
      handled.push(n);
    },
  });
  await stage.start();
  await waitFor(() => handled.length === 9, 15_000, 'every other record handled');
  const dead = await waitFor(() => reader.json<DeadLetter>(Topics.dead).find((d) => d.source.topic === topic), 10_000, 'the dead letter');
  assert.equal(dead.code, 'RENDER_FAILED');
  assert.equal(dead.reason, 'the template threw');
  assert.equal(dead.messageId, `${topic}-m3`);
  assert.equal(dead.source.offset, '3');
  assert.equal(dead.source.value, messages[3].value, 'the original record is kept');
  const failed = await waitFor(() => reader.json<EmailEvent>(Topics.events).find((e) => e.messageId === `${topic}-m3`), 10_000, 'the failed event');
  assert.equal(failed.type, 'failed');
  assert.match(failed.reason ?? '', /RENDER_FAILED/);
  assert.ok(await waitFor(() => memberOf(groupId), 10_000, 'still a group member'));
  const admin = kafka.admin();
  await admin.connect();
  await waitFor(async () => (await admin.fetchOffsets({ groupId, topics: [topic] }))[0].partitions[0].offset === '10', 10_000, 'committed past the poison record');
  await admin.disconnect();
  await stage.stop();
  await consumer.disconnect();
  await reader.stop();
  await producer.drain();
  await raw.disconnect();
});

test('liveness: a consumer that crashed for good fails /healthz and the stage is told to exit', async () => {
  const topic = uniqueName('crash');
  await createTopic(topic);
  const config = loadPostlineConfig({
    env: {},
    overrides: { 'log.level': 'silent', 'kafka.brokers': [broker.bootstrap], 'kafka.createTopics': false, 'ops.host': '127.0.0.1', 'ops.port': 0, 'ops.consumerGraceMs': 60_000 },
  });
  let dead: Record<string, string> | undefined;
  const rt = await startRuntime('liveness-test', config, { logger, onConsumerDead: (p) => (dead = p) });
  const consumer: Consumer = rt.kafka.consumer({ groupId: uniqueName('group'), maxWaitTimeInMs: 100, retry: { retries: 0 } });
  rt.watchConsumer('consumer', consumer);
  rt.shutdown.add('disconnect consumer', () => consumer.disconnect());
  rt.addFinalShutdownSteps();
  const ops = await rt.startOps();
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async () => {
        // Not retriable: kafkajs crashes the consumer and does not restart it.
        throw new PermanentError('BUG', 'a handler bug');
      },
    });
    let res = await fetch(`${ops}/healthz`);
    assert.equal(res.status, 200, 'alive while starting');
    const raw = rt.kafka.producer();
    await raw.connect();
    await raw.send({ topic, messages: [{ value: 'boom' }] });
    await raw.disconnect();
    await waitFor(() => dead, 15_000, 'the dead-consumer callback');
    assert.match(dead!.consumer, /crashed/);
    res = await fetch(`${ops}/healthz`);
    assert.equal(res.status, 503);
    const body = (await res.json()) as { checks: Record<string, string> };
    assert.match(body.checks.consumer, /crashed and will not restart/);
  } finally {
    await rt.shutdown.run();
  }
});

test('StageConsumer: a fetched batch no codec can decode is dead-lettered as its raw bytes and the partition moves on', async () => {
  const topic = uniqueName('undecodable');
  const groupId = uniqueName('group');
  await createTopic(topic);
  const raw = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await raw.connect();
  const producer = new BatchingProducer(raw);
  const reader = await new TopicReader(broker.bootstrap, [Topics.dead]).start();
  await raw.send({ topic, acks: -1, messages: [{ value: 'before' }] });
  const { baseOffset, compressed } = await produceGzipBatch(broker.bootstrap, topic, 0, [{ value: 'x1' }, { value: 'x2' }, { value: 'x3' }]);
  await raw.send({ topic, acks: -1, messages: [{ value: 'after' }] });
  corruptStoredBatch(broker.dataDir, topic, 0, compressed);

  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
  await consumer.connect();
  const handled: string[] = [];
  const stage = new StageConsumer({
    consumer,
    topics: [topic],
    concurrency: 4,
    logger,
    deadLetters: new EventPublisher(producer, 'test-stage'),
    handle: async ({ message }) => {
      handled.push(message.value!.toString());
    },
  });
  await stage.start();
  await waitFor(() => handled.includes('after'), 15_000, 'the record after the bad batch');
  assert.deepEqual(handled, ['before', 'after'], 'no placeholder reaches the handler');
  const dead = await waitFor(() => reader.json<DeadLetter>(Topics.dead).find((d) => d.source.topic === topic), 10_000, 'the dead letter');
  assert.equal(dead.code, 'UNDECODABLE_BATCH');
  assert.match(dead.reason, /compression codec 1/);
  assert.equal(dead.source.offset, String(baseOffset + 2), 'at the batch’s last offset, so committing it skips the batch');
  assert.equal(dead.source.valueEncoding, 'base64');
  assert.deepEqual(Buffer.from(dead.source.value!, 'base64'), Buffer.alloc(compressed.length, 0xab), 'the raw stored bytes');
  assert.deepEqual(dead.source.headers, {});
  const admin = kafka.admin();
  await admin.connect();
  await waitFor(async () => (await admin.fetchOffsets({ groupId, topics: [topic] }))[0].partitions[0].offset === String(baseOffset + 4), 10_000, 'committed past the batch');
  await admin.disconnect();
  await stage.stop();
  await consumer.disconnect();
  await reader.stop();
  await producer.drain();
  await raw.disconnect();
});

test('CompactedTable and readTopicRange leave no consumer group behind, across restarts', async () => {
  const topic = uniqueName('groupless');
  await createTopic(topic, [{ name: 'cleanup.policy', value: 'compact' }]);
  const admin = kafka.admin();
  await admin.connect();
  const groupsBefore = new Set((await admin.listGroups()).groups.map((g) => g.groupId));
  const raw = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await raw.connect();
  const producer = new BatchingProducer(raw);
  const codec = { decode: (b: Buffer) => b.toString(), encode: (v: string) => Buffer.from(v) };
  for (let round = 0; round < 3; round++) {
    const table = new CompactedTable<string>({ kafka, producer, topic, logger, ...codec });
    await table.start();
    await table.put(`k${round}`, `v${round}`);
    assert.equal(table.size, round + 1);
    await table.stop();
    let read = 0;
    const range = await readTopicRange(kafka, topic, {}, () => read++, { timeoutMs: 10_000 });
    assert.equal(range.complete, true);
    assert.equal(read, round + 1);
  }
  const left = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => !groupsBefore.has(g));
  assert.deepEqual(left, [], 'groups left behind');
  await admin.disconnect();
  await producer.drain();
  await raw.disconnect();
});

test('liveness under a supervisor (POSTLINE_SUPERVISED=1): a stage whose consumer crashed for good shuts down and exits 1', async () => {
  const topic = uniqueName('supervised');
  await createTopic(topic);
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./fixtures/crashing-consumer-stage.ts', import.meta.url)), broker.bootstrap, topic, uniqueName('group')], {
    // Not a test process itself: without NODE_TEST_CONTEXT its output is its own.
    env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_TEST_CONTEXT')), POSTLINE_SUPERVISED: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await waitFor(() => output.includes('service ready'), 30_000, 'the stage started').catch((err: Error) => assert.fail(`${err.message}: ${output.slice(-3000)}`));
  const raw = kafka.producer();
  await raw.connect();
  await raw.send({ topic, messages: [{ value: 'boom' }] });
  await raw.disconnect();
  const code = await Promise.race([exited, new Promise<'running'>((r) => setTimeout(() => r('running'), 30_000).unref())]);
  if (code === 'running') child.kill('SIGKILL');
  assert.equal(code, 1, output.slice(-2000));
  assert.match(output, /consumer is not consuming; exiting so the supervisor restarts this stage/);
});

test('BatchingProducer: when one partition of a merged batch is refused, the producer is renewed and every partition stays writable', async () => {
  const topic = uniqueName('refuse-partition');
  await createTopic(topic, [{ name: 'max.message.bytes', value: '2000' }], 2);
  const producers: Producer[] = [];
  const newProducer = async (): Promise<Producer> => {
    const p = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await p.connect();
    producers.push(p);
    return p;
  };
  const bp = new BatchingProducer(await newProducer(), { lingerMs: 20, renew: newProducer });
  // Partition 1's three records exceed its 2000 bytes together, so the broker refuses that
  // partition's batch and stores partition 0's two records of the same request.
  const results = await Promise.allSettled([
    bp.send(topic, { partition: 0, value: 'a' }),
    bp.send(topic, { partition: 0, value: 'b' }),
    ...['c', 'd', 'e'].map((v) => bp.send(topic, { partition: 1, value: v.repeat(700) })),
  ]);
  assert.deepEqual(
    results.map((r) => (r.status === 'rejected' ? String(r.reason) : 'ok')),
    ['ok', 'ok', 'ok', 'ok', 'ok'],
  );
  // Without a new producer id, kafkajs's rewound sequence numbers make this OUT_OF_ORDER_SEQUENCE_NUMBER forever.
  await bp.send(topic, { partition: 0, value: 'later' });
  assert.equal(producers.length, 2, 'one renewal');
  await bp.drain();
  for (const p of producers) await p.disconnect();
});

test('EventPublisher: a dead letter too large for email.dead keeps the head of the value and says so', async () => {
  const raw = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await raw.connect();
  const producer = new BatchingProducer(raw);
  const reader = await new TopicReader(broker.bootstrap, [Topics.dead]).start();
  const topic = uniqueName('huge-source');
  const value = Buffer.from(`{"messageId":"${topic}","tenant":"acme","html":"${'x'.repeat(1_500_000)}"}`);
  await new EventPublisher(producer, 'test-stage').deadLetter({ topic, partition: 0, message: { key: null, value, offset: '7', timestamp: '0', attributes: 0, headers: {} } as never }, 'MESSAGE_TOO_LARGE', 'too large for the next topic', { messageId: topic, tenant: 'acme' });
  const dead = await waitFor(() => reader.json<DeadLetter>(Topics.dead).find((d) => d.source.topic === topic), 10_000, 'the dead letter');
  assert.equal(dead.code, 'MESSAGE_TOO_LARGE');
  assert.match(dead.reason, /^too large for the next topic \(value truncated to its first 65536 of \d+ bytes: MESSAGE_TOO_LARGE\)$/);
  assert.equal(dead.source.value, value.subarray(0, 65536).toString('utf8'));
  await reader.stop();
  await producer.drain();
  await raw.disconnect();
});
