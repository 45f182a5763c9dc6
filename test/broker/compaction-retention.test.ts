/**
 * Log maintenance as users see it: a compacted topic read from offset 0 gives the latest value
 * of every live key at its original offset, deletes stay visible as tombstones for
 * delete.retention.ms and then vanish; retention.bytes and retention.ms drop whole old segments
 * and move the earliest offset. kafkajs and kcat (with CRC checks on the rewritten batches) agree.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CompressionTypes, type Admin, type Kafka, type Producer } from 'kafkajs';
import { uniqueName, waitFor, type TestBroker } from '../helpers/broker.js';
import { consumeAll, type ConsumedRecord, startBrokerWithClients } from './support/kafkajs-clients.js';
import { assertKcatInstalled, kcatOk } from './support/kcat.js';

let broker: TestBroker;
let kafka: Kafka;
let admin: Admin;
let producer: Producer;

before(async () => {
  ({ broker, kafka, admin, producer } = await startBrokerWithClients());
});

after(async () => {
  await producer.disconnect();
  await admin.disconnect();
  await broker.destroy();
});

async function createTopic(configs: Record<string, string>): Promise<string> {
  const topic = uniqueName('maint');
  await admin.createTopics({ topics: [{ topic, configEntries: Object.entries(configs).map(([name, value]) => ({ name, value })) }] });
  return topic;
}

async function low(topic: string): Promise<number> {
  return Number((await admin.fetchTopicOffsets(topic))[0].low);
}

/** Everything from offset 0 (or the log start) up to the high watermark, with a fresh group. */
async function readFromStart(topic: string): Promise<ConsumedRecord[]> {
  const [{ high, low: start }] = await admin.fetchTopicOffsets(topic);
  const last = Number(high) - 1;
  const out: ConsumedRecord[] = [];
  const consumer = kafka.consumer({ groupId: uniqueName('reader'), maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({ eachMessage: async ({ message }) => void out.push({ partition: 0, offset: Number(message.offset), key: message.key?.toString() ?? null, value: message.value?.toString() ?? null, headers: {}, timestamp: Number(message.timestamp) }) });
  await waitFor(() => out.some((r) => r.offset === last), 15_000, `offset ${last} (log starts at ${start})`);
  await consumer.disconnect();
  return out;
}

describe('compaction', () => {
  test('latest value per key at its original offset; tombstones kept for delete.retention.ms, then dropped', async () => {
    assertKcatInstalled();
    const DELETE_RETENTION = 1500;
    const topic = await createTopic({ 'cleanup.policy': 'compact', 'segment.bytes': '1024', 'delete.retention.ms': String(DELETE_RETENTION) });
    const latest = new Map<string, { offset: number; value: string | null }>();
    const send = async (messages: Array<{ key: string; value: string | null }>, compression = CompressionTypes.None): Promise<void> => {
      const [r] = await producer.send({ topic, acks: -1, compression, messages });
      messages.forEach((m, i) => latest.set(m.key, { offset: Number(r.baseOffset) + i, value: m.value }));
    };
    for (let version = 0; version < 12; version++) {
      // Alternate plain and gzip batches: compaction must decode and rewrite both.
      await send(Array.from({ length: 6 }, (_, k) => ({ key: `key-${k}`, value: `key-${k} version ${version} ${'.'.repeat(20)}` })), version % 2 ? CompressionTypes.GZIP : CompressionTypes.None);
    }
    await send([{ key: 'key-1', value: null }, { key: 'key-4', value: null }]);
    // Newer writes push the tombstones out of the active segment (only closed ones are cleaned).
    for (let i = 0; i < 8; i++) await send([{ key: `filler-${i % 2}`, value: `filler ${i} ${'.'.repeat(60)}` }]);

    const before = await readFromStart(topic);
    broker.runMaintenance();
    // Tombstones age from the newest record of their segment, and a partition is re-cleaned
    // once delete.retention.ms has passed since its last cleaning: both are at most now.
    const tombstonesExpireAt = Date.now() + DELETE_RETENTION + 50;
    const compacted = await readFromStart(topic);
    assert.ok(compacted.length < before.length / 3, `compaction removed old versions (${before.length} → ${compacted.length})`);
    const expectLive = (withTombstones: boolean): Array<[number, string, string | null]> =>
      [...latest]
        .filter(([, v]) => withTombstones || v.value !== null)
        .map(([k, v]) => [v.offset, k, v.value] as [number, string, string | null])
        .sort((x, y) => x[0] - y[0]);
    const asTuples = (rs: ConsumedRecord[]): Array<[number, string, string | null]> => rs.map((r) => [r.offset, r.key as string, r.value]);
    // Older filler versions may still sit in the active segment; every key's latest is there,
    // at the offset it was written at, and the deleted keys show their tombstone.
    const firstView = asTuples(compacted);
    for (const want of expectLive(true)) assert.ok(firstView.some((got) => got[0] === want[0] && got[1] === want[1] && got[2] === want[2]), `latest ${want[1]} at ${want[0]}`);
    for (const [offset, key] of firstView) {
      if (!key.startsWith('filler')) assert.equal(latest.get(key)!.offset, offset, `${key}: only its latest version survives`);
    }

    // librdkafka checks the CRCs of the rewritten batches and reads a compacted gap.
    const viaKcat = await kcatOk(['-b', broker.bootstrap, '-C', '-t', topic, '-o', 'beginning', '-e', '-q', '-X', 'check.crcs=true', '-f', '%o %k\n']);
    assert.deepEqual(viaKcat.split('\n').filter(Boolean), firstView.map(([o, k]) => `${o} ${k}`));
    const gap = firstView[0][0] + 1;
    assert.ok(!firstView.some(([o]) => o === gap), 'the offset after the first survivor was compacted away');
    const fromGap = await kcatOk(['-b', broker.bootstrap, '-C', '-t', topic, '-o', String(gap), '-e', '-q', '-f', '%o\n']);
    assert.equal(fromGap.split('\n')[0], String(firstView[1][0]), 'reading from a compacted gap starts at the next surviving record');

    // Once delete.retention.ms has passed, the tombstones (and so the keys) are gone.
    await waitFor(() => Date.now() > tombstonesExpireAt, DELETE_RETENTION + 10_000, 'tombstones to expire');
    broker.runMaintenance();
    const finalView = asTuples(await readFromStart(topic));
    const keys = new Set(finalView.map(([, k]) => k));
    assert.ok(!keys.has('key-1') && !keys.has('key-4'), 'deleted keys are gone');
    for (const want of expectLive(false)) assert.ok(finalView.some((got) => got[0] === want[0] && got[2] === want[2]), `latest ${want[1]} still at ${want[0]}`);
  });
});

describe('retention', () => {
  test('retention.bytes deletes whole old segments; the earliest offset moves and readers start there', async () => {
    assertKcatInstalled();
    const topic = await createTopic({ 'segment.bytes': '1024', 'retention.bytes': '2048' });
    for (let i = 0; i < 30; i++) await producer.send({ topic, acks: -1, messages: [{ value: `record ${i} ${'.'.repeat(100)}` }] });
    assert.equal(await low(topic), 0);
    broker.runMaintenance();
    const start = await low(topic);
    assert.ok(start > 0, 'ListOffsets earliest moved past the deleted segments');
    const records = await consumeAll(kafka, topic, 30 - start);
    assert.equal(records[0].offset, start);
    assert.equal(records.at(-1)!.offset, 29);
    const first = await kcatOk(['-b', broker.bootstrap, '-C', '-t', topic, '-o', 'beginning', '-e', '-q', '-f', '%o\n']);
    assert.equal(first.split('\n')[0], String(start));
  });

  test('retention.ms deletes segments whose newest record is older than the limit', async () => {
    const topic = await createTopic({ 'segment.bytes': '1024', 'retention.ms': '3600000' });
    const old = Date.now() - 2 * 3_600_000;
    for (let i = 0; i < 20; i++) await producer.send({ topic, acks: -1, messages: [{ value: `old ${i} ${'.'.repeat(100)}`, timestamp: String(old + i) }] });
    const [{ high: firstNew }] = await admin.fetchTopicOffsets(topic);
    for (let i = 0; i < 3; i++) await producer.send({ topic, acks: -1, messages: [{ value: `new ${i} ${'.'.repeat(100)}` }] });
    broker.runMaintenance();
    const start = await low(topic);
    assert.ok(start > 0 && start <= Number(firstNew), `old segments deleted (log starts at ${start}, new records from ${firstNew})`);
    const records = await readFromStart(topic);
    assert.ok(records.filter((r) => r.value!.startsWith('new')).length === 3, 'every new record kept');
  });
});
