/**
 * Topic configuration and record deletion through kafkajs admin, as admin tools and UIs use
 * them: DescribeConfigs (effective values, where they come from, synonyms; broker configs
 * read-only), AlterConfigs (validated with Kafka's error codes, applied at once, kept across a
 * restart), DeleteRecords (the log start moves, reads below it are out of range, kept across a
 * restart), and manual replica assignments naming brokers that do not exist.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import kafkajs, { type Admin, type Kafka, type Producer } from 'kafkajs';
import { startTestBroker, tempDir, uniqueName, type TestBroker } from '../helpers/broker.js';
import { testKafka } from './support/kafkajs-clients.js';
import { API, Dec, Enc, WireClient, fetchBody, parseFetchV4 } from './support/wire-client.js';
import { kcatOk } from './support/kcat.js';

const { ConfigResourceTypes } = kafkajs;
const dataDir = tempDir('postline-configs-');
let broker: TestBroker;
let kafka: Kafka;
let admin: Admin;
let producer: Producer;

async function start(): Promise<void> {
  broker = await startTestBroker({ dataDir, topicDefaults: { 'retention.ms': '86400000' } });
  kafka = testKafka(broker.bootstrap, { retry: { retries: 0 } });
  admin = kafka.admin();
  producer = kafka.producer();
  await Promise.all([admin.connect(), producer.connect()]);
}

async function stop(): Promise<void> {
  await Promise.all([admin.disconnect(), producer.disconnect()]);
  await broker.close();
}

before(start);
after(async () => {
  await stop();
  await broker.destroy();
});

function kafkaError(type: string): (e: unknown) => boolean {
  return (e: unknown) => {
    const err = e as { type?: string; errors?: Array<{ type?: string }>; originalError?: { type?: string } };
    return err.type === type || err.originalError?.type === type || Boolean(err.errors?.some((x) => x.type === type));
  };
}

async function topic(configs: Record<string, string> = {}, numPartitions = 1): Promise<string> {
  const name = uniqueName('cfg');
  await admin.createTopics({ topics: [{ topic: name, numPartitions, configEntries: Object.entries(configs).map(([n, value]) => ({ name: n, value })) }] });
  return name;
}

interface Entry {
  value: string;
  isDefault: boolean;
  source: number;
  readOnly: boolean;
  synonyms: Array<[string, string, number]>;
}

async function describeTopic(name: string, configNames?: string[]): Promise<Map<string, Entry>> {
  const { resources } = await admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name, configNames }], includeSynonyms: true });
  assert.equal(resources[0].errorCode, 0, resources[0].errorMessage ?? '');
  return new Map(
    resources[0].configEntries.map((e) => [
      e.configName,
      {
        value: e.configValue,
        isDefault: e.isDefault,
        source: e.configSource,
        readOnly: e.readOnly,
        synonyms: e.configSynonyms.map((s) => [s.configName, s.configValue, s.configSource] as [string, string, number]),
      },
    ]),
  );
}

async function alter(name: string, configs: Record<string, string>, validateOnly = false): Promise<void> {
  await admin.alterConfigs({ validateOnly, resources: [{ type: ConfigResourceTypes.TOPIC, name, configEntries: Object.entries(configs).map(([n, value]) => ({ name: n, value })) }] });
}

test('describeConfigs lists effective topic values with their source and synonyms', async () => {
  const t = await topic({ 'cleanup.policy': 'compact', 'max.message.bytes': '2048' });
  const cfg = await describeTopic(t);
  assert.deepEqual(cfg.get('cleanup.policy'), {
    value: 'compact',
    isDefault: false,
    source: 1,
    readOnly: false,
    synonyms: [['cleanup.policy', 'compact', 1], ['log.cleanup.policy', 'delete', 5]],
  });
  assert.equal(cfg.get('max.message.bytes')?.value, '2048');
  // Not set on the topic: the broker-wide default (STATIC_BROKER_CONFIG), then the built-in one.
  assert.deepEqual(cfg.get('retention.ms'), {
    value: '86400000',
    isDefault: false,
    source: 4,
    readOnly: false,
    synonyms: [['log.retention.ms', '86400000', 4], ['log.retention.ms', '604800000', 5]],
  });
  assert.deepEqual(cfg.get('segment.bytes')?.value, String(128 * 1024 * 1024));
  for (const name of ['min.compaction.lag.ms', 'retention.bytes', 'segment.ms', 'delete.retention.ms']) assert.ok(cfg.has(name), name);
  assert.deepEqual([...(await describeTopic(t, ['max.message.bytes'])).keys()], ['max.message.bytes'], 'configNames selects');
  await assert.rejects(
    admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: uniqueName('missing') }], includeSynonyms: false }),
    kafkaError('UNKNOWN_TOPIC_OR_PARTITION'),
  );
});

test('describeConfigs lists broker configs, read-only; altering them is refused', async () => {
  const { resources } = await admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.BROKER, name: '1' }], includeSynonyms: false });
  const cfg = new Map(resources[0].configEntries.map((e) => [e.configName, e]));
  assert.equal(cfg.get('broker.id')?.configValue, '1');
  assert.equal(cfg.get('log.retention.ms')?.configValue, '86400000');
  assert.equal(cfg.get('offsets.retention.minutes')?.configValue, String(7 * 24 * 60));
  assert.ok([...cfg.values()].every((e) => e.readOnly));
  await assert.rejects(
    admin.alterConfigs({ validateOnly: false, resources: [{ type: ConfigResourceTypes.BROKER, name: '1', configEntries: [{ name: 'log.retention.ms', value: '1' }] }] }),
    kafkaError('INVALID_REQUEST'),
  );
});

test('alterConfigs validates values with INVALID_CONFIG, and an unknown topic with UNKNOWN_TOPIC_OR_PARTITION', async () => {
  const t = await topic();
  for (const [name, value] of [['cleanup.policy', 'shred'], ['retention.ms', 'soon'], ['segment.bytes', '12'], ['min.compaction.lag.ms', '-5']]) {
    await assert.rejects(alter(t, { [name]: value }), kafkaError('INVALID_CONFIG'), `${name}=${value}`);
  }
  await assert.rejects(alter(uniqueName('missing'), { 'retention.ms': '1000' }), kafkaError('UNKNOWN_TOPIC_OR_PARTITION'));
  await alter(t, { 'retention.ms': '1000' }, true);
  assert.equal((await describeTopic(t)).get('retention.ms')?.value, '86400000', 'validateOnly changes nothing');
});

test('alterConfigs takes effect at once (max.message.bytes) and replaces the whole setting list', async () => {
  const t = await topic({ 'cleanup.policy': 'compact' });
  const big = { value: 'x'.repeat(4000) };
  await producer.send({ topic: t, acks: -1, messages: [{ key: 'k', ...big }] });
  await alter(t, { 'max.message.bytes': '1024' });
  await assert.rejects(producer.send({ topic: t, acks: -1, messages: [{ key: 'k', ...big }] }), kafkaError('MESSAGE_TOO_LARGE'));
  const cfg = await describeTopic(t);
  assert.equal(cfg.get('max.message.bytes')?.value, '1024');
  assert.deepEqual([cfg.get('cleanup.policy')?.value, cfg.get('cleanup.policy')?.source], ['delete', 5], 'settings not named fall back to the defaults (AlterConfigs is not incremental)');
});

test('altered configs and deleted records survive a restart', async () => {
  const t = await topic();
  await alter(t, { 'retention.ms': '3600000', 'max.message.bytes': '4096' });
  await producer.send({ topic: t, acks: -1, messages: Array.from({ length: 10 }, (_, i) => ({ value: `v${i}` })) });
  await admin.fetchTopicMetadata({ topics: [t] });
  await admin.deleteTopicRecords({ topic: t, partitions: [{ partition: 0, offset: '6' }] });
  await stop();
  await start();
  const cfg = await describeTopic(t);
  assert.deepEqual([cfg.get('retention.ms')?.value, cfg.get('max.message.bytes')?.value], ['3600000', '4096']);
  const [offsets] = await admin.fetchTopicOffsets(t);
  assert.deepEqual([offsets.low, offsets.high], ['6', '10']);
});

test('deleteTopicRecords moves the log start; fetching below it is OFFSET_OUT_OF_RANGE; reading from it works', async () => {
  const t = await topic({ 'segment.bytes': '1024' });
  for (let i = 0; i < 20; i++) await producer.send({ topic: t, acks: -1, messages: [{ value: `record ${i} ${'.'.repeat(100)}` }] });
  await admin.fetchTopicMetadata({ topics: [t] }); // kafkajs looks the partition leader up in its metadata
  await admin.deleteTopicRecords({ topic: t, partitions: [{ partition: 0, offset: '13' }] });
  const [offsets] = await admin.fetchTopicOffsets(t);
  assert.deepEqual([offsets.low, offsets.high], ['13', '20']);
  const w = await WireClient.connect(broker.bootstrap);
  try {
    assert.equal(parseFetchV4(await w.request(API.Fetch, 4, fetchBody(t, 0, 12))).errorCode, 1, 'OFFSET_OUT_OF_RANGE below the log start');
    const from = parseFetchV4(await w.request(API.Fetch, 4, fetchBody(t, 0, 13)));
    assert.equal(from.errorCode, 0);
    assert.ok(from.records.length > 0);
  } finally {
    w.close();
  }
  // A consumer starting from the beginning starts at the new log start.
  const consumer = kafka.consumer({ groupId: uniqueName('after-delete'), maxWaitTimeInMs: 100 });
  const seen: number[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic: t, fromBeginning: true });
  await consumer.run({ eachMessage: async ({ message }) => void seen.push(Number(message.offset)) });
  const deadline = Date.now() + 15_000;
  while (seen.length < 7 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  await consumer.disconnect();
  assert.deepEqual(seen, [13, 14, 15, 16, 17, 18, 19]);
  // librdkafka starts "from the beginning" at the new log start too.
  const kcatOut = await kcatOk(['-b', broker.bootstrap, '-C', '-t', t, '-o', 'beginning', '-e', '-q', '-f', '%o\n']);
  assert.deepEqual(kcatOut.split('\n').filter(Boolean).map(Number), [13, 14, 15, 16, 17, 18, 19]);
  // -1 deletes up to the high watermark.
  await admin.deleteTopicRecords({ topic: t, partitions: [{ partition: 0, offset: '-1' }] });
  assert.equal((await admin.fetchTopicOffsets(t))[0].low, '20');
});

test('manual replica assignments naming brokers that do not exist: INVALID_REPLICA_ASSIGNMENT', async () => {
  await assert.rejects(
    admin.createTopics({ topics: [{ topic: uniqueName('ra'), replicaAssignment: [{ partition: 0, replicas: [2] }] }] }),
    kafkaError('INVALID_REPLICA_ASSIGNMENT'),
  );
  const ok = uniqueName('ra');
  await admin.createTopics({ topics: [{ topic: ok, replicaAssignment: [{ partition: 0, replicas: [1] }, { partition: 1, replicas: [1] }] }] });
  assert.equal((await admin.fetchTopicMetadata({ topics: [ok] })).topics[0].partitions.length, 2);
  await assert.rejects(admin.createPartitions({ topicPartitions: [{ topic: ok, count: 3, assignments: [[5]] }] }), kafkaError('INVALID_REPLICA_ASSIGNMENT'));
  await admin.createPartitions({ topicPartitions: [{ topic: ok, count: 3, assignments: [[1]] }] });
  assert.equal((await admin.fetchTopicMetadata({ topics: [ok] })).topics[0].partitions.length, 3);
});

test('min.compaction.lag.ms holds young records back from compaction; altering it applies on the next pass', async () => {
  const t = await topic({ 'cleanup.policy': 'compact', 'segment.bytes': '1024', 'min.compaction.lag.ms': String(3600_000) });
  for (let v = 0; v < 12; v++) await producer.send({ topic: t, acks: -1, messages: [{ key: 'same', value: `version ${v} ${'.'.repeat(200)}` }] });
  const count = async (): Promise<number> => {
    const out = await kcatOk(['-b', broker.bootstrap, '-C', '-t', t, '-o', 'beginning', '-e', '-q', '-f', '%o\n']);
    return out.split('\n').filter(Boolean).length;
  };
  broker.runMaintenance();
  assert.equal(await count(), 12, 'every version is younger than the lag: nothing compacted');
  await alter(t, { 'cleanup.policy': 'compact', 'segment.bytes': '1024', 'min.compaction.lag.ms': '0' });
  broker.runMaintenance();
  assert.ok((await count()) < 12, 'with no lag the old versions in closed segments go');
});

test('IncrementalAlterConfigs (kafka-configs.sh, the Java admin client) changes only the settings it names', async () => {
  const t = await topic({ 'cleanup.policy': 'compact', 'retention.ms': '3600000' });
  const ops: Array<[string, number, string | null]> = [['max.message.bytes', 0, '4096'], ['retention.ms', 1, null], ['cleanup.policy', 2, 'delete']];
  const body = new Enc()
    .array([t], (e) => e.int8(2).string(t).array(ops, (c, [name, op, value]) => c.string(name).int8(op).string(value)))
    .int8(0)
    .buffer;
  const w = await WireClient.connect(broker.bootstrap);
  try {
    const d = new Dec(await w.request(44, 0, body));
    d.int32(); // throttle
    const [result] = d.array((r) => ({ errorCode: r.int16(), errorMessage: r.string(), type: r.int8(), name: r.string() }));
    assert.deepEqual(result, { errorCode: 0, errorMessage: null, type: 2, name: t });
    const bad = new Enc().array([t], (e) => e.int8(2).string(t).array([0], (c) => c.string('retention.ms').int8(2).string('5'))).int8(0).buffer;
    const d2 = new Dec(await w.request(44, 0, bad));
    d2.int32();
    assert.equal(d2.array((r) => r.int16())[0], 40, 'APPEND to a setting that is not a list: INVALID_CONFIG');
  } finally {
    w.close();
  }
  const cfg = await describeTopic(t);
  assert.deepEqual(
    [cfg.get('max.message.bytes')?.value, cfg.get('retention.ms')?.value, cfg.get('retention.ms')?.source, cfg.get('cleanup.policy')?.value],
    ['4096', '86400000', 4, 'compact,delete'],
  );
});
