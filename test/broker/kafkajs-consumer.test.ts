/**
 * kafkajs consumer groups: eachMessage and eachBatch, automatic and manual commits, resuming
 * from committed offsets, rebalances when members join, leave or crash, pause/resume and seek.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Admin, Consumer, Kafka, Producer } from 'kafkajs';
import { uniqueName, waitFor, type TestBroker } from '../helpers/broker.js';
import { FAST_CONSUMER, startBrokerWithClients } from './support/kafkajs-clients.js';
import { spawnConsumerProcess, trackedConsumer, type ConsumerProcess, type Processed, type TrackedConsumer } from './support/tracked-consumer.js';

let broker: TestBroker;
let kafka: Kafka;
let admin: Admin;
let producer: Producer;
const consumers: Consumer[] = [];
const tracked: TrackedConsumer[] = [];
const processes: ConsumerProcess[] = [];

before(async () => {
  ({ broker, kafka, admin, producer } = await startBrokerWithClients());
});

after(async () => {
  for (const p of processes) await p.kill('SIGKILL');
  for (const c of consumers) await c.disconnect();
  for (const c of tracked) await c.stop();
  await producer.disconnect();
  await admin.disconnect();
  await broker.destroy();
});

async function topic(partitions: number): Promise<string> {
  const name = uniqueName('consume');
  await admin.createTopics({ topics: [{ topic: name, numPartitions: partitions }] });
  return name;
}

async function produce(t: string, n: number, partitions: number, from = 0): Promise<void> {
  await producer.send({ topic: t, acks: -1, messages: Array.from({ length: n }, (_, i) => ({ partition: (from + i) % partitions, value: `m${from + i}` })) });
}

function consumer(groupId: string, over: Partial<Parameters<Kafka['consumer']>[0]> = {}): Consumer {
  const c = kafka.consumer({ groupId, ...FAST_CONSUMER, ...over });
  consumers.push(c);
  return c;
}

async function committed(groupId: string, t: string): Promise<Record<number, string>> {
  const [res] = await admin.fetchOffsets({ groupId, topics: [t] });
  return Object.fromEntries(res.partitions.map((p) => [p.partition, p.offset]));
}

describe('consuming and committing', () => {
  test('eachMessage with auto-commit: everything once, offsets committed, a restarted member resumes after them', async () => {
    const t = await topic(3);
    await produce(t, 30, 3);
    const groupId = uniqueName('g');
    const seen: string[] = [];
    const c = consumer(groupId);
    await c.connect();
    await c.subscribe({ topic: t, fromBeginning: true });
    await c.run({ autoCommitThreshold: 1, eachMessage: async ({ message }) => void seen.push(message.value!.toString()) });
    await waitFor(() => seen.length >= 30, 10_000, '30 records');
    await waitFor(async () => Object.values(await committed(groupId, t)).every((o) => o === '10'), 10_000, 'offsets 10/10/10 committed');
    await c.disconnect();
    assert.equal(new Set(seen).size, 30);
    assert.equal(seen.length, 30, 'no record delivered twice');

    await produce(t, 6, 3, 30);
    const after: string[] = [];
    const c2 = consumer(groupId);
    await c2.connect();
    await c2.subscribe({ topic: t, fromBeginning: true });
    await c2.run({ eachMessage: async ({ message }) => void after.push(message.value!.toString()) });
    await waitFor(() => after.length >= 6, 10_000, 'the 6 new records');
    assert.deepEqual(after.sort(), ['m30', 'm31', 'm32', 'm33', 'm34', 'm35']);
  });

  test('eachBatch with manual resolveOffset and commitOffsetsIfNecessary', async () => {
    const t = await topic(1);
    await produce(t, 40, 1);
    const groupId = uniqueName('g');
    const offsets: number[] = [];
    let batches = 0;
    const c = consumer(groupId);
    await c.connect();
    await c.subscribe({ topic: t, fromBeginning: true });
    await c.run({
      eachBatchAutoResolve: false,
      autoCommit: false,
      eachBatch: async ({ batch, resolveOffset, heartbeat, commitOffsetsIfNecessary }) => {
        batches++;
        for (const m of batch.messages) {
          offsets.push(Number(m.offset));
          resolveOffset(m.offset);
        }
        await heartbeat();
        await c.commitOffsets([{ topic: t, partition: batch.partition, offset: String(Number(batch.lastOffset()) + 1) }]);
        await commitOffsetsIfNecessary();
      },
    });
    await waitFor(() => offsets.length >= 40, 10_000, '40 records');
    assert.deepEqual(offsets, [...Array(40).keys()]);
    assert.ok(batches >= 1);
    await waitFor(async () => (await committed(groupId, t))[0] === '40', 10_000, 'offset 40 committed');
  });

  test('pause stops a partition, resume continues it where it stopped', async () => {
    const t = await topic(2);
    const groupId = uniqueName('g');
    const got: Array<[number, string]> = [];
    const c = consumer(groupId);
    await c.connect();
    await c.subscribe({ topic: t, fromBeginning: true });
    await c.run({ eachMessage: async ({ partition, message }) => void got.push([partition, message.value!.toString()]) });
    await produce(t, 4, 2);
    await waitFor(() => got.length >= 4, 10_000, 'first 4');
    c.pause([{ topic: t, partitions: [1] }]);
    await produce(t, 10, 2, 4);
    await waitFor(() => got.filter(([p]) => p === 0).length >= 7, 10_000, 'partition 0 continues');
    // Partition 0 has moved on by 5 records; partition 1 delivered nothing since the pause.
    assert.equal(got.filter(([p]) => p === 1).length, 2);
    assert.deepEqual(c.paused(), [{ topic: t, partitions: [1] }]);
    c.resume([{ topic: t, partitions: [1] }]);
    await waitFor(() => got.length >= 14, 10_000, 'partition 1 after resume');
    assert.deepEqual(got.filter(([p]) => p === 1).map(([, v]) => v), ['m1', 'm3', 'm5', 'm7', 'm9', 'm11', 'm13']);
  });

  test('seek replays from an earlier offset and skips ahead to a later one', async () => {
    const t = await topic(1);
    await produce(t, 20, 1);
    const groupId = uniqueName('g');
    const got: number[] = [];
    const c = consumer(groupId);
    await c.connect();
    await c.subscribe({ topic: t, fromBeginning: true });
    await c.run({ eachMessage: async ({ message }) => void got.push(Number(message.offset)) });
    await waitFor(() => got.length >= 20, 10_000, 'first pass');
    c.seek({ topic: t, partition: 0, offset: '5' });
    await waitFor(() => got.length >= 35, 10_000, 'replay from 5');
    assert.deepEqual(got.slice(20, 35), [...Array(15).keys()].map((i) => i + 5));
    c.seek({ topic: t, partition: 0, offset: '25' }); // past the end: nothing until it exists
    await produce(t, 10, 1, 20);
    await waitFor(() => got.includes(29), 10_000, 'records from 25 on');
    assert.deepEqual(got.slice(35), [25, 26, 27, 28, 29]);
  });
});

describe('rebalancing', () => {
  function assertPartitionsSplit(members: TrackedConsumer[], partitions: number): void {
    const all = members.flatMap((m) => m.current()?.partitions ?? []).sort((a, b) => a - b);
    assert.deepEqual(all, [...Array(partitions).keys()], 'every partition assigned exactly once');
    const gens = new Set(members.map((m) => m.current()?.generation));
    assert.equal(gens.size, 1, 'all members in the same generation');
  }

  test('a member joining takes over some partitions; the one that leaves hands them back', async () => {
    const t = await topic(4);
    const groupId = uniqueName('g');
    const log: Processed[] = [];
    const a = await trackedConsumer({ bootstrap: broker.bootstrap, groupId, topic: t, name: 'a', log });
    tracked.push(a);
    await waitFor(() => a.current()?.partitions.length === 4, 10_000, 'a owns all 4');
    const b = await trackedConsumer({ bootstrap: broker.bootstrap, groupId, topic: t, name: 'b', log });
    tracked.push(b);
    await waitFor(() => (b.current()?.partitions.length ?? 0) > 0 && a.current()!.generation === b.current()!.generation, 15_000, 'a and b share the partitions');
    assertPartitionsSplit([a, b], 4);
    await produce(t, 40, 4);
    await waitFor(() => log.length >= 40, 10_000, '40 records');
    await a.stop(); // LeaveGroup: b rebalances at once, no session timeout
    await waitFor(() => b.current()?.partitions.length === 4, 10_000, 'b owns all 4 after a left');
    await produce(t, 8, 4, 40);
    await waitFor(() => log.length >= 48, 10_000, '8 more records');
    assert.ok(log.slice(-8).every((p) => p.member === 'b'));
    const { groups } = await admin.describeGroups([groupId]);
    assert.equal(groups[0].members.length, 1);
  });

  test('a crashed member (SIGKILL, no LeaveGroup) is dropped after its session timeout and its partitions move', async () => {
    const t = await topic(2);
    const groupId = uniqueName('g');
    const log: Processed[] = [];
    const a = await trackedConsumer({ bootstrap: broker.bootstrap, groupId, topic: t, name: 'a', log });
    tracked.push(a);
    await waitFor(() => a.current()?.partitions.length === 2, 10_000, 'a owns both');
    const crashing = await spawnConsumerProcess(broker.bootstrap, t, groupId, 3000);
    processes.push(crashing);
    await waitFor(() => a.current()?.partitions.length === 1, 15_000, 'a and the process split the partitions');
    const lost = [0, 1].filter((p) => !a.current()!.partitions.includes(p));
    await crashing.kill('SIGKILL');
    const killedAt = Date.now();
    await waitFor(() => a.current()?.partitions.length === 2, 20_000, 'a owns both again');
    assert.ok(Date.now() - killedAt < 15_000);
    await produce(t, 10, 2);
    await waitFor(() => log.filter((p) => lost.includes(p.partition)).length >= 5, 10_000, 'records of the lost partition reach a');
    const { groups } = await admin.describeGroups([groupId]);
    assert.equal(groups[0].members.length, 1);
  });
});
