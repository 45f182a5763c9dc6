/**
 * Three consumers of one group join and leave while a producer keeps writing. Every
 * acknowledged record must be processed, and no record may be processed by two members of the
 * same generation (at-least-once allows a re-delivery after a rebalance, never two owners).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Admin, Kafka, Producer } from 'kafkajs';
import { uniqueName, waitFor, type TestBroker } from '../helpers/broker.js';
import { startBrokerWithClients } from './support/kafkajs-clients.js';
import { trackedConsumer, type Processed, type TrackedConsumer } from './support/tracked-consumer.js';

const PARTITIONS = 6;
let broker: TestBroker;
let kafka: Kafka;
let admin: Admin;
let producer: Producer;
const members: TrackedConsumer[] = [];

before(async () => {
  ({ broker, kafka, admin, producer } = await startBrokerWithClients());
});

after(async () => {
  for (const m of members) await m.stop();
  await producer.disconnect();
  await admin.disconnect();
  await broker.destroy();
});

test('members join and leave under load: nothing lost, no record owned twice in a generation', async () => {
  const topic = uniqueName('rebalance');
  const groupId = uniqueName('rebalance-group');
  await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }] });

  const acked: Array<[number, number]> = [];
  let producing = true;
  let n = 0;
  const writer = (async () => {
    while (producing) {
      const res = await producer.send({
        topic,
        acks: -1,
        messages: Array.from({ length: PARTITIONS }, (_, p) => ({ partition: p, value: `r${n++}` })),
      });
      for (const r of res) acked.push([r.partition, Number(r.baseOffset)]); // one record per partition
    }
  })();

  const log: Processed[] = [];
  const join = async (name: string): Promise<TrackedConsumer> => {
    const m = await trackedConsumer({ bootstrap: broker.bootstrap, groupId, topic, name, log });
    members.push(m);
    return m;
  };
  const live = (): TrackedConsumer[] => members.filter((m) => !stopped.has(m));
  const stopped = new Set<TrackedConsumer>();
  const leave = async (m: TrackedConsumer): Promise<void> => {
    stopped.add(m);
    await m.stop();
  };
  /** Waits until the live members agree on one generation that covers every partition. */
  const settled = async (what: string): Promise<void> => {
    await waitFor(() => {
      const ms = live();
      const gens = new Set(ms.map((m) => m.current()?.generation));
      const owned = ms.flatMap((m) => m.current()?.partitions ?? []);
      return gens.size === 1 && owned.length === PARTITIONS && new Set(owned).size === PARTITIONS;
    }, 20_000, what);
    const before = log.length;
    await waitFor(() => log.length > before + PARTITIONS, 10_000, `progress after ${what}`);
  };

  const a = await join('a');
  await settled('a alone');
  const b = await join('b');
  await settled('a+b');
  const c = await join('c');
  await settled('a+b+c');
  await leave(a);
  await settled('b+c');
  await join('d');
  await settled('b+c+d');
  await Promise.all([leave(b), join('e')]);
  await settled('c+d+e');
  await leave(c);
  await settled('d+e');

  producing = false;
  await writer;
  const end = new Map<number, number>();
  for (const [p, o] of acked) end.set(p, Math.max(end.get(p) ?? -1, o));
  const done = (): boolean => [...end].every(([p, last]) => log.some((x) => x.partition === p && x.offset === last));
  await waitFor(done, 15_000, 'the last acknowledged record of every partition to be processed');

  // Nothing acknowledged was lost.
  const processed = new Set(log.map((x) => `${x.partition}:${x.offset}`));
  const missing = acked.filter(([p, o]) => !processed.has(`${p}:${o}`));
  assert.deepEqual(missing, [], 'acknowledged records never processed');
  assert.ok(acked.length > 50, `the producer kept writing through the rebalances (${acked.length} batches)`);

  // No record processed by two different members acting in the same generation.
  const owners = new Map<string, Set<string>>();
  for (const x of log) {
    const key = `${x.partition}:${x.offset}@${x.generation}`;
    const set = owners.get(key) ?? new Set<string>();
    set.add(x.memberId);
    owners.set(key, set);
  }
  const doubled = [...owners].filter(([, s]) => s.size > 1).map(([k, s]) => `${k} by ${[...s].join(', ')}`);
  assert.deepEqual(doubled, [], 'records processed twice within one generation');

  // And the assignments the coordinator handed out never overlapped within a generation.
  const byGeneration = new Map<number, number[]>();
  for (const m of members) {
    for (const asg of m.assignments) byGeneration.set(asg.generation, [...(byGeneration.get(asg.generation) ?? []), ...asg.partitions]);
  }
  for (const [gen, parts] of byGeneration) assert.equal(new Set(parts).size, parts.length, `generation ${gen} assigned a partition twice`);
  assert.ok(byGeneration.size >= 7, `one generation per membership change (${[...byGeneration.keys()].join(',')})`);
  assert.ok(log.every((x) => x.generation > 0));
  assert.deepEqual(live().map((m) => m.name).sort(), ['d', 'e']);
});
