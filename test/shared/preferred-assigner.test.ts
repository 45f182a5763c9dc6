/**
 * The renderer's partition assigner on a real broker (shared/kafka/preferred-assigner.ts): a
 * preferred member that joins takes every partition from the others; when it leaves, the others
 * get them back within about a second or two — not after their 10 s fetch wait, since a member
 * with no partition sleeps at most UNASSIGNED_WAIT_MS (fetch-wake.ts); a member that does not
 * know the assigner keeps the group on round-robin.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka, logLevel, PartitionAssigners, type Consumer } from 'kafkajs';
import '../../shared/kafka/fetch-wake.js';
import { startTestBroker, uniqueName, waitFor, type TestBroker } from '../helpers/broker.js';
import { preferringAssigners } from '../../shared/kafka/preferred-assigner.js';

let broker: TestBroker;
let kafka: Kafka;
const consumers: Consumer[] = [];

before(async () => {
  broker = await startTestBroker();
  kafka = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
});
after(async () => {
  await Promise.all(consumers.map((c) => c.disconnect().catch(() => undefined)));
  await broker.destroy();
});

interface Member {
  consumer: Consumer;
  /** Partitions of the topic in its latest assignment. */
  partitions(): number[];
  seen: string[];
}

/** A member as npm start's renderer lanes make them: 10 s fetch waits, 1 s heartbeats. */
async function member(groupId: string, topic: string, assigners: ReturnType<typeof preferringAssigners>): Promise<Member> {
  const consumer = new Kafka({ brokers: [broker.bootstrap], clientId: uniqueName('member'), logLevel: logLevel.NOTHING }).consumer({ groupId, partitionAssigners: assigners, maxWaitTimeInMs: 10_000, heartbeatInterval: 1000 });
  consumers.push(consumer);
  let current: number[] = [];
  consumer.on(consumer.events.GROUP_JOIN, (e) => (current = [...((e.payload.memberAssignment as Record<string, number[]>)[topic] ?? [])].sort()));
  const seen: string[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({ eachMessage: async ({ message }) => void seen.push(String(message.value)) });
  return { consumer, partitions: () => current, seen };
}

/** A new topic of four partitions and a group name for it. */
async function topicAndGroup(name: string): Promise<{ topic: string; groupId: string }> {
  const topic = uniqueName(name);
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 4 }] });
  await admin.disconnect();
  return { topic, groupId: uniqueName(`${name}-group`) };
}

test('a preferred member takes every partition while it is in the group, and the others get them back promptly when it leaves', { timeout: 60_000 }, async () => {
  const { topic, groupId } = await topicAndGroup('preferred');

  const plain = await member(groupId, topic, preferringAssigners(false));
  await waitFor(() => plain.partitions().length === 4, 15_000, 'the first member holding all four partitions');

  const preferred = await member(groupId, topic, preferringAssigners(true));
  await waitFor(() => preferred.partitions().length === 4 && plain.partitions().length === 0, 15_000, 'the preferred member holding every partition');

  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic, messages: [0, 1, 2, 3].map((p) => ({ partition: p, value: `while-preferred-${p}` })) });
  await waitFor(() => preferred.seen.length === 4, 10_000, 'the preferred member consuming');
  assert.deepEqual(plain.seen, [], 'the other member consumed nothing meanwhile');

  const left = performance.now();
  await preferred.consumer.disconnect();
  await waitFor(() => plain.partitions().length === 4, 15_000, 'the remaining member holding every partition again');
  const backAfterMs = performance.now() - left;
  assert.ok(backAfterMs < 5_000, `partitions back after ${Math.round(backAfterMs)} ms (its fetch wait is 10 s)`);
  await producer.send({ topic, messages: [0, 1, 2, 3].map((p) => ({ partition: p, value: `after-${p}` })) });
  await waitFor(() => plain.seen.filter((v) => v.startsWith('after-')).length === 4, 10_000, 'the remaining member consuming');
  await producer.disconnect();
});

test('a member that only knows round-robin keeps the group on round-robin: partitions are shared, none is preferred', { timeout: 60_000 }, async () => {
  const { topic, groupId } = await topicAndGroup('mixed');
  const old = await member(groupId, topic, [PartitionAssigners.roundRobin]);
  await waitFor(() => old.partitions().length === 4, 15_000, 'the first member holding all four partitions');
  const preferred = await member(groupId, topic, preferringAssigners(true));
  await waitFor(() => preferred.partitions().length === 2 && old.partitions().length === 2, 15_000, 'two partitions each');
});
