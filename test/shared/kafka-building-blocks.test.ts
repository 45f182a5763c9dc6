import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka, logLevel } from 'kafkajs';
import pino from 'pino';
import { startTestBroker, uniqueName, waitFor, type TestBroker } from '../helpers/broker.js';
import { BatchingProducer } from '../../shared/kafka/batching-producer.js';
import { StageConsumer } from '../../shared/kafka/stage-consumer.js';
import { CompactedTable } from '../../shared/kafka/compacted-table.js';

const logger = pino({ level: 'silent' });
/** For handlers that never fail permanently: a dead letter would be a bug. */
const noDeadLetters = { deadLetter: async () => assert.fail('no record should be dead-lettered') };
let broker: TestBroker;
let kafka: Kafka;

before(async () => {
  broker = await startTestBroker();
  kafka = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
});
after(() => broker.destroy());

async function produceRequests(): Promise<number> {
  const text = await broker.registry.metrics();
  const m = /postline_broker_requests_total\{api="Produce"\} (\d+)/.exec(text);
  return m ? Number(m[1]) : 0;
}

test('BatchingProducer: concurrent sends share requests and every one is acked', async () => {
  const topic = uniqueName('batching');
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] });
  const raw = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await raw.connect();
  const producer = new BatchingProducer(raw, { lingerMs: 5 });
  const before = await produceRequests();
  await Promise.all(Array.from({ length: 500 }, (_, i) => producer.send(topic, { key: `k${i}`, value: `v${i}` })));
  const requests = (await produceRequests()) - before;
  const offsets = await admin.fetchTopicOffsets(topic);
  assert.equal(offsets.reduce((n, o) => n + Number(o.high), 0), 500);
  assert.ok(requests <= 20, `500 sends took ${requests} produce requests`);
  await producer.drain();
  await raw.disconnect();
  await admin.disconnect();
});

test('StageConsumer: bounded concurrency, commits after the handler, a failure resumes at the failed record', async () => {
  const topic = uniqueName('stage');
  const groupId = uniqueName('group');
  const raw = kafka.producer();
  await raw.connect();
  await raw.send({ topic, messages: Array.from({ length: 40 }, (_, i) => ({ value: String(i) })) });
  await raw.disconnect();

  const seen: number[] = [];
  let active = 0;
  let maxActive = 0;
  let failOnce = true;
  const run = async (stopAfter: number): Promise<void> => {
    const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
    await consumer.connect();
    const stage = new StageConsumer({
      consumer,
      topics: [topic],
      concurrency: 4,
      logger,
      deadLetters: noDeadLetters,
      handle: async ({ message }) => {
        const n = Number(message.value!.toString());
        active++;
        maxActive = Math.max(maxActive, active);
        await new Promise((r) => setTimeout(r, 2));
        active--;
        if (n === 25 && failOnce) {
          failOnce = false;
          throw new Error('side effect failed');
        }
        seen.push(n);
      },
    });
    stage.on('failed', () => undefined);
    await stage.start();
    await waitFor(() => seen.length >= stopAfter, 15_000, `${stopAfter} records handled`);
    await stage.stop();
    await consumer.disconnect();
  };
  // kafkajs restarts the consumer after the handler error; the record that failed comes again.
  await run(40);
  assert.ok(maxActive <= 4, `concurrency ${maxActive} exceeded 4`);
  for (let i = 0; i < 40; i++) assert.ok(seen.includes(i), `record ${i} never handled`);

  const admin = kafka.admin();
  await admin.connect();
  const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
  assert.equal(committed.partitions[0].offset, '40');
  await admin.disconnect();
});

test('StageConsumer: the in-flight byte budget bounds the records handled at once; a record above it runs alone', async () => {
  const topic = uniqueName('stage-bytes');
  const raw = kafka.producer();
  await raw.connect();
  // 1 KB records, with a 10 KB one (larger than the whole 4 KB budget) in the middle.
  const sizes = Array.from({ length: 30 }, (_, i) => (i === 15 ? 10_000 : 1_000));
  await raw.send({ topic, messages: sizes.map((n, i) => ({ value: Buffer.alloc(n, i % 10) })) });
  await raw.disconnect();
  const consumer = kafka.consumer({ groupId: uniqueName('group'), maxWaitTimeInMs: 100 });
  await consumer.connect();
  let bytes = 0;
  let maxBytes = 0;
  let handled = 0;
  let bigRanAlone: boolean | undefined;
  const stage = new StageConsumer({
    consumer,
    topics: [topic],
    concurrency: 20,
    maxInFlightBytes: 4_000,
    logger,
    deadLetters: noDeadLetters,
    handle: async ({ message }) => {
      const n = message.value!.length;
      if (n > 4_000) bigRanAlone = bytes === 0;
      bytes += n;
      if (n <= 4_000) maxBytes = Math.max(maxBytes, bytes);
      await new Promise((r) => setTimeout(r, 5));
      bytes -= n;
      handled++;
    },
  });
  await stage.start();
  await waitFor(() => handled >= sizes.length, 15_000, 'every record handled');
  await stage.stop();
  await consumer.disconnect();
  assert.equal(maxBytes, 4_000, 'small records fill the budget, never more');
  assert.equal(bigRanAlone, true, 'the oversized record ran with nothing else in flight');
});

test('CompactedTable: read-your-writes, a new instance loads the current state, tombstones delete', async () => {
  const topic = uniqueName('table');
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 1, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }] });
  await admin.disconnect();
  const raw = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await raw.connect();
  const producer = new BatchingProducer(raw);
  const make = () =>
    new CompactedTable<{ v: number }>({
      kafka,
      producer,
      topic,
      logger,
      decode: (b) => JSON.parse(b.toString()) as { v: number },
      encode: (v) => Buffer.from(JSON.stringify(v)),
    });
  const a = make();
  await a.start();
  assert.deepEqual(await a.put('x', { v: 1 }), { v: 1 });
  await a.put('x', { v: 2 });
  await a.put('y', { v: 3 });
  await a.put('y', null);
  assert.deepEqual(a.get('x'), { v: 2 });
  assert.equal(a.get('y'), undefined);

  const b = make();
  await b.start();
  assert.deepEqual(b.get('x'), { v: 2 });
  assert.equal(b.get('y'), undefined);
  assert.equal(b.size, 1);
  await a.stop();
  await b.stop();
  await producer.drain();
  await raw.disconnect();
});
