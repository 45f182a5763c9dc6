/**
 * Every kafkajs 2.2.4 admin operation the broker supports, with the answers a user relies on:
 * topics, partitions, offsets (earliest/latest/by timestamp, also inside gzip batches), and
 * consumer-group offsets and membership.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CompressionTypes, type Admin, type Kafka, type Producer, type Consumer } from 'kafkajs';
import { startTestBroker, uniqueName, waitFor, type TestBroker } from '../helpers/broker.js';
import { FAST_CONSUMER, testKafka } from './support/kafkajs-clients.js';

let broker: TestBroker;
let kafka: Kafka;
let admin: Admin;
/** For calls expected to fail: kafkajs would otherwise retry retriable errors for seconds. */
let noRetryAdmin: Admin;
let producer: Producer;
const consumers: Consumer[] = [];

before(async () => {
  broker = await startTestBroker();
  kafka = testKafka(broker.bootstrap);
  admin = kafka.admin();
  noRetryAdmin = testKafka(broker.bootstrap, { retry: { retries: 0 } }).admin();
  producer = kafka.producer();
  await Promise.all([admin.connect(), noRetryAdmin.connect(), producer.connect()]);
});

after(async () => {
  for (const c of consumers) await c.disconnect();
  await producer.disconnect();
  await admin.disconnect();
  await noRetryAdmin.disconnect();
  await broker.destroy();
});

/** Matches a kafkajs error (or aggregate of errors) carrying the Kafka error `type`. */
function kafkaError(type: string): (e: unknown) => boolean {
  const matches = (e: unknown): boolean => {
    const err = e as { type?: string; errors?: unknown[]; cause?: unknown; groups?: Array<{ error?: unknown }> } | undefined;
    if (!err) return false;
    return err.type === type || (err.errors ?? []).some(matches) || matches(err.cause) || (err.groups ?? []).some((g) => matches(g.error));
  };
  return matches;
}

async function produceN(topic: string, n: number, partition = 0): Promise<void> {
  await producer.send({ topic, acks: -1, messages: Array.from({ length: n }, (_, i) => ({ partition, value: `v${i}` })) });
}

/** A group that consumed and committed: returns once `committed` offsets are stored for partition 0. */
async function groupThatCommitted(topic: string, committed: number): Promise<{ groupId: string; consumer: Consumer }> {
  const groupId = uniqueName('admin-group');
  const consumer = kafka.consumer({ groupId, ...FAST_CONSUMER });
  consumers.push(consumer);
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let seen = 0;
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ message, partition }) => {
      seen++;
      if (Number(message.offset) + 1 === committed) await consumer.commitOffsets([{ topic, partition, offset: String(committed) }]);
    },
  });
  await waitFor(async () => {
    const [t] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return t.partitions.find((p) => p.partition === 0)?.offset === String(committed);
  }, 10_000, `group to commit ${committed}`);
  assert.ok(seen >= committed);
  return { groupId, consumer };
}

test('describeCluster names this node as the only broker and the controller', async () => {
  const cluster = await admin.describeCluster();
  assert.deepEqual(cluster.brokers, [{ nodeId: 1, host: broker.bootstrap.split(':')[0], port: broker.port }]);
  assert.equal(cluster.controller, 1);
  assert.match(cluster.clusterId, /^[A-Za-z0-9_-]{22}$/);
});

describe('topics', () => {
  test('createTopics, listTopics, fetchTopicMetadata', async () => {
    const a = uniqueName('adm');
    const b = uniqueName('adm');
    assert.equal(await admin.createTopics({ topics: [{ topic: a, numPartitions: 3 }, { topic: b }] }), true);
    assert.equal(await admin.createTopics({ topics: [{ topic: a, numPartitions: 3 }] }), false, 'already exists: false, not an error');
    const names = await admin.listTopics();
    assert.ok(names.includes(a) && names.includes(b));
    const { topics } = await admin.fetchTopicMetadata({ topics: [a, b] });
    const byName = Object.fromEntries(topics.map((t) => [t.name, t.partitions.map((p) => [p.partitionId, p.leader, p.replicas, p.isr])]));
    assert.deepEqual(byName[a], [[0, 1, [1], [1]], [1, 1, [1], [1]], [2, 1, [1], [1]]]);
    assert.equal(byName[b].length, 1);
  });

  test('createTopics validateOnly creates nothing; bad requests get their Kafka errors', async () => {
    const v = uniqueName('validate');
    await admin.createTopics({ topics: [{ topic: v, numPartitions: 2 }], validateOnly: true, waitForLeaders: false });
    assert.ok(!(await admin.listTopics()).includes(v));
    await assert.rejects(admin.createTopics({ topics: [{ topic: uniqueName('rf'), replicationFactor: 3 }] }), kafkaError('INVALID_REPLICATION_FACTOR'));
    await assert.rejects(admin.createTopics({ topics: [{ topic: 'bad name!' }] }), kafkaError('INVALID_TOPIC_EXCEPTION'));
    await assert.rejects(
      admin.createTopics({ topics: [{ topic: uniqueName('cfg'), configEntries: [{ name: 'cleanup.policy', value: 'shred' }] }] }),
      kafkaError('INVALID_CONFIG'),
    );
    await assert.rejects(admin.createTopics({ topics: [{ topic: uniqueName('zero'), numPartitions: 0 }] }), kafkaError('INVALID_PARTITIONS'));
  });

  test('a legal 249-character topic can be created, used and deleted', async () => {
    const name = `${uniqueName('long')}-`.padEnd(249, 'x');
    await admin.createTopics({ topics: [{ topic: name }] });
    await produceN(name, 2);
    assert.equal((await admin.fetchTopicOffsets(name))[0].high, '2');
    await admin.deleteTopics({ topics: [name] });
    assert.ok(!(await admin.listTopics()).includes(name));
  });

  test('createPartitions adds partitions that are immediately writable; shrinking is refused', async () => {
    const t = uniqueName('grow');
    await admin.createTopics({ topics: [{ topic: t, numPartitions: 1 }] });
    await admin.createPartitions({ topicPartitions: [{ topic: t, count: 4 }] });
    const { topics } = await admin.fetchTopicMetadata({ topics: [t] });
    assert.equal(topics[0].partitions.length, 4);
    await produceN(t, 3, 3);
    const offsets = await admin.fetchTopicOffsets(t);
    assert.equal(offsets.find((o) => o.partition === 3)!.high, '3');
    await assert.rejects(noRetryAdmin.createPartitions({ topicPartitions: [{ topic: t, count: 2 }] }), kafkaError('INVALID_PARTITIONS'));
    await assert.rejects(noRetryAdmin.createPartitions({ topicPartitions: [{ topic: uniqueName('nope'), count: 2 }] }), kafkaError('UNKNOWN_TOPIC_OR_PARTITION'));
  });

  test('deleteTopics removes the topic, its data and its committed offsets', async () => {
    const t = uniqueName('doomed');
    await admin.createTopics({ topics: [{ topic: t }] });
    await produceN(t, 5);
    const { groupId, consumer } = await groupThatCommitted(t, 5);
    await consumer.disconnect();
    await admin.deleteTopics({ topics: [t] });
    assert.ok(!(await admin.listTopics()).includes(t));
    await assert.rejects(noRetryAdmin.deleteTopics({ topics: [t] }), kafkaError('UNKNOWN_TOPIC_OR_PARTITION'));
    // Re-created under the same name: empty, and the group has no stale position in it.
    await admin.createTopics({ topics: [{ topic: t }] });
    assert.deepEqual((await admin.fetchTopicOffsets(t)).map((o) => [o.low, o.high]), [['0', '0']]);
    const [offsets] = await admin.fetchOffsets({ groupId, topics: [t] });
    assert.equal(offsets.partitions[0].offset, '-1');
  });
});

describe('offsets', () => {
  test('fetchTopicOffsets reports low, high and offset per partition', async () => {
    const t = uniqueName('offs');
    await admin.createTopics({ topics: [{ topic: t, numPartitions: 2 }] });
    await produceN(t, 7, 1);
    const offsets = (await admin.fetchTopicOffsets(t)).sort((x, y) => x.partition - y.partition);
    assert.deepEqual(offsets.map((o) => [o.partition, o.low, o.high, o.offset]), [[0, '0', '0', '0'], [1, '0', '7', '7']]);
  });

  for (const compression of [CompressionTypes.None, CompressionTypes.GZIP]) {
    test(`fetchTopicOffsetsByTimestamp finds the first record at or after a time (${compression === CompressionTypes.GZIP ? 'gzip' : 'plain'} batches)`, async () => {
      const t = uniqueName('bytime');
      await admin.createTopics({ topics: [{ topic: t }] });
      const base = Date.now() - 60_000;
      // Two batches of five records, one millisecond apart per record.
      for (const start of [0, 5]) {
        await producer.send({
          topic: t,
          acks: -1,
          compression,
          messages: Array.from({ length: 5 }, (_, i) => ({ value: `r${start + i}`, timestamp: String(base + (start + i) * 1000) })),
        });
      }
      const at = async (ts: number): Promise<string> => (await admin.fetchTopicOffsetsByTimestamp(t, ts))[0].offset;
      assert.equal(await at(base - 1), '0');
      assert.equal(await at(base), '0');
      assert.equal(await at(base + 2_000), '2', 'inside the first batch');
      assert.equal(await at(base + 2_500), '3');
      assert.equal(await at(base + 7_000), '7', 'inside the second batch');
      assert.equal(await at(base + 9_000), '9');
      assert.equal(await at(base + 60_000), '10', 'past the last record: the end offset');
    });
  }
});

describe('consumer groups', () => {
  test('fetchOffsets, setOffsets and resetOffsets', async () => {
    const t = uniqueName('grp-offs');
    await admin.createTopics({ topics: [{ topic: t }] });
    await produceN(t, 10);
    const { groupId, consumer } = await groupThatCommitted(t, 4);
    const fetched = await admin.fetchOffsets({ groupId, topics: [t] });
    assert.deepEqual(fetched, [{ topic: t, partitions: [{ partition: 0, offset: '4', metadata: null }] }]);
    await assert.rejects(admin.setOffsets({ groupId, topic: t, partitions: [{ partition: 0, offset: '1' }] }), 'the group has a live member');
    await consumer.disconnect();
    await admin.setOffsets({ groupId, topic: t, partitions: [{ partition: 0, offset: '7' }] });
    assert.equal((await admin.fetchOffsets({ groupId, topics: [t] }))[0].partitions[0].offset, '7');
    // kafkajs stores a reset as the special offsets -2 (earliest) / -1 (latest), as with Kafka,
    // and its next consumer then falls back to its own fromBeginning setting.
    const firstTwo = async (): Promise<string[]> => {
      const c = kafka.consumer({ groupId, ...FAST_CONSUMER });
      consumers.push(c);
      const seen: string[] = [];
      await c.connect();
      await c.subscribe({ topic: t, fromBeginning: true });
      await c.run({ eachMessage: async ({ message }) => void seen.push(message.offset) });
      await waitFor(() => seen.length >= 2, 10_000, 'two records');
      await c.disconnect();
      return seen.slice(0, 2);
    };
    // (kafkajs's setOffsets/resetOffsets each idle ~5 s in a paused consumer, so few of them.)
    assert.deepEqual(await firstTwo(), ['7', '8']);
    await admin.resetOffsets({ groupId, topic: t, earliest: true });
    assert.equal((await admin.fetchOffsets({ groupId, topics: [t] }))[0].partitions[0].offset, '-2');
    assert.deepEqual(await firstTwo(), ['0', '1']);
  });

  test('describeGroups, listGroups and deleteGroups', async () => {
    const t = uniqueName('grp-desc');
    await admin.createTopics({ topics: [{ topic: t }] });
    await produceN(t, 2);
    const { groupId, consumer } = await groupThatCommitted(t, 2);
    const { groups } = await admin.describeGroups([groupId, uniqueName('unknown-group')]);
    assert.equal(groups[0].state, 'Stable');
    assert.equal(groups[0].protocolType, 'consumer');
    assert.equal(groups[0].members.length, 1);
    assert.ok(groups[0].members[0].memberAssignment.length > 0);
    assert.equal(groups[1].state, 'Dead');
    const listed = await admin.listGroups();
    assert.ok(listed.groups.some((g) => g.groupId === groupId && g.protocolType === 'consumer'));

    await assert.rejects(noRetryAdmin.deleteGroups([groupId]), kafkaError('NON_EMPTY_GROUP'));
    await consumer.disconnect();
    const res = await admin.deleteGroups([groupId]);
    assert.deepEqual(res.map((r) => [r.groupId, r.errorCode]), [[groupId, 0]]);
    assert.ok(!(await admin.listGroups()).groups.some((g) => g.groupId === groupId));
    assert.equal((await admin.fetchOffsets({ groupId, topics: [t] }))[0].partitions[0].offset, '-1', 'its offsets are gone');
    await assert.rejects(noRetryAdmin.deleteGroups([groupId]), kafkaError('GROUP_ID_NOT_FOUND'));
  });
});
