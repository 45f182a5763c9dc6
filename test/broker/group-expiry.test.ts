/**
 * Consumer groups do not pile up: an empty group whose last activity is older than
 * `offsets.retention.minutes` is deleted with its offsets (also after a restart), a group with
 * members never is, and throwaway groups can be deleted at once with DeleteGroups.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Admin, Consumer, Kafka, Producer } from 'kafkajs';
import { startTestBroker, tempDir, uniqueName, waitFor, type TestBroker } from '../helpers/broker.js';
import { FAST_CONSUMER, testKafka } from './support/kafkajs-clients.js';

const RETENTION_MINUTES = 60;
const RETENTION_MS = RETENTION_MINUTES * 60_000;
const dataDir = tempDir('postline-groups-');
let broker: TestBroker;
let kafka: Kafka;
let admin: Admin;
let producer: Producer;
const consumers: Consumer[] = [];

async function start(): Promise<void> {
  broker = await startTestBroker({ dataDir, offsetsRetentionMinutes: RETENTION_MINUTES });
  kafka = testKafka(broker.bootstrap);
  admin = kafka.admin();
  producer = kafka.producer();
  await Promise.all([admin.connect(), producer.connect()]);
}

before(start);
after(async () => {
  for (const c of consumers) await c.disconnect();
  await Promise.all([admin.disconnect(), producer.disconnect()]);
  await broker.destroy();
});

async function topicWith(n: number): Promise<string> {
  const t = uniqueName('expiry');
  await admin.createTopics({ topics: [{ topic: t }] });
  await producer.send({ topic: t, acks: -1, messages: Array.from({ length: n }, (_, i) => ({ value: `v${i}` })) });
  return t;
}

/** A consumer in `groupId` that has consumed and committed all `n` records of `t`. */
async function consumed(groupId: string, t: string, n: number): Promise<Consumer> {
  const c = kafka.consumer({ groupId, ...FAST_CONSUMER });
  consumers.push(c);
  await c.connect();
  await c.subscribe({ topic: t, fromBeginning: true });
  await c.run({ autoCommitThreshold: 1, eachMessage: async () => undefined });
  await waitFor(async () => {
    const [r] = await admin.fetchOffsets({ groupId, topics: [t] });
    return r.partitions[0].offset === String(n);
  }, 15_000, `${groupId} to commit ${n}`);
  return c;
}

async function listed(): Promise<Set<string>> {
  return new Set((await admin.listGroups()).groups.map((g) => g.groupId));
}

test('empty groups expire after offsets.retention.minutes with their offsets; groups with members stay', async () => {
  const t = await topicWith(3);
  const gone = uniqueName('left');
  const active = uniqueName('active');
  const standalone = uniqueName('standalone');
  const leaver = await consumed(gone, t, 3);
  await leaver.disconnect();
  await consumed(active, t, 3);
  await admin.setOffsets({ groupId: standalone, topic: t, partitions: [{ partition: 0, offset: '2' }] });
  const start = Date.now();

  broker.runMaintenance(start + RETENTION_MS - 60_000);
  for (const g of [gone, active, standalone]) assert.ok((await listed()).has(g), `${g} is kept within the retention`);

  broker.runMaintenance(start + RETENTION_MS + 60_000);
  const after = await listed();
  assert.ok(!after.has(gone), 'the group whose members left is deleted');
  assert.ok(!after.has(standalone), 'a group that only ever committed is deleted');
  assert.ok(after.has(active), 'a group with a member is kept');
  const [offsets] = await admin.fetchOffsets({ groupId: gone, topics: [t] });
  assert.equal(offsets.partitions[0].offset, '-1', 'its committed offsets went with it');
});

test('expiry counts from the stored last activity after a restart, and deletions are durable', async () => {
  const t = await topicWith(2);
  const old = uniqueName('old');
  const leaver = await consumed(old, t, 2);
  await leaver.disconnect();
  const committedAt = Date.now();
  for (const c of consumers.splice(0)) await c.disconnect();
  await Promise.all([admin.disconnect(), producer.disconnect()]);
  await broker.close();
  await start();
  assert.ok((await listed()).has(old), 'restored from the state store');
  broker.runMaintenance(committedAt + RETENTION_MS + 60_000);
  assert.ok(!(await listed()).has(old), 'expired by its stored activity time, not by the restart');

  await Promise.all([admin.disconnect(), producer.disconnect()]);
  await broker.close();
  await start();
  assert.ok(!(await listed()).has(old), 'still gone after another restart');
});

test('deleteGroups removes a throwaway group at once; a group with members is refused', async () => {
  const t = await topicWith(1);
  const throwaway = uniqueName('throwaway');
  const c = await consumed(throwaway, t, 1);
  await assert.rejects(admin.deleteGroups([throwaway]), (e: unknown) => JSON.stringify((e as { groups?: unknown }).groups ?? '').includes('NON_EMPTY_GROUP') || /NON_EMPTY_GROUP|not empty/i.test(String(e)));
  await c.disconnect();
  await admin.deleteGroups([throwaway]);
  assert.ok(!(await listed()).has(throwaway));
});
