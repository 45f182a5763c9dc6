/**
 * Every Kafka codec end to end: kcat (librdkafka) produces gzip, snappy, lz4 and zstd batches
 * that the broker stores compressed and kafkajs (with Postline's codecs) reads; kafkajs produces
 * each codec and kcat reads it with CRC checks; compaction of compressed batches keeps the
 * latest value per key. The broker decodes each codec to validate what it stores.
 */
import { test, before, after } from 'node:test';
import { randomBytes } from 'node:crypto';
import assert from 'node:assert/strict';
import { CompressionTypes, type Admin, type Kafka, type Producer } from 'kafkajs';
import '../../shared/kafka/codecs.js';
import { uniqueName, type TestBroker } from '../helpers/broker.js';
import { consumeAll, startBrokerWithClients } from './support/kafkajs-clients.js';
import { assertKcatInstalled, kcat, kcatOk } from './support/kcat.js';
import { API, WireClient, fetchBody, parseFetchV4 } from './support/wire-client.js';

let broker: TestBroker;
let kafka: Kafka;
let admin: Admin;
let producer: Producer;
let wire: WireClient;

before(async () => {
  ({ broker, kafka, admin, producer } = await startBrokerWithClients());
  wire = await WireClient.connect(broker.bootstrap);
});

after(async () => {
  wire.close();
  await producer.disconnect();
  await admin.disconnect();
  await broker.destroy();
});

const CODECS = [
  { name: 'gzip', id: 1, kafkajs: CompressionTypes.GZIP },
  { name: 'snappy', id: 2, kafkajs: CompressionTypes.Snappy },
  { name: 'lz4', id: 3, kafkajs: CompressionTypes.LZ4 },
  { name: 'zstd', id: 4, kafkajs: CompressionTypes.ZSTD },
] as const;

async function topic(configs: Record<string, string> = {}): Promise<string> {
  const name = uniqueName('codec');
  await admin.createTopics({ topics: [{ topic: name, configEntries: Object.entries(configs).map(([n, value]) => ({ name: n, value })) }] });
  return name;
}

/** The codec id of every batch stored in partition 0, read with a raw Fetch. */
async function storedCodecs(t: string): Promise<number[]> {
  const { errorCode, records } = parseFetchV4(await wire.request(API.Fetch, 4, fetchBody(t, 0, 0)));
  assert.equal(errorCode, 0);
  const out: number[] = [];
  for (let pos = 0; pos + 61 <= records.length; pos += 12 + records.readInt32BE(pos + 8)) out.push(records.readInt16BE(pos + 21) & 7);
  return out;
}

// Compressible values: librdkafka stores a batch uncompressed when compressing does not shrink it
// (a batch may hold a single record when the machine is busy).
const lines = (codec: string, n: number): string[] => Array.from({ length: n }, (_, i) => `k${i}:${codec} value ${i} ${'x'.repeat(100 + i)}`);

for (const codec of CODECS) {
  test(`kcat -z ${codec.name}: stored as ${codec.name} batches, read back by kafkajs and kcat`, async () => {
    assertKcatInstalled();
    const t = await topic();
    const input = lines(codec.name, 40);
    await kcatOk(['-b', broker.bootstrap, '-P', '-t', t, '-K:', '-z', codec.name], { input: `${input.join('\n')}\n` });
    const codecs = await storedCodecs(t);
    assert.ok(codecs.length > 0 && codecs.every((c) => c === codec.id), `librdkafka compressed with ${codec.name} (stored codecs: ${codecs.join(',')})`);
    const got = await consumeAll(kafka, t, 40);
    assert.deepEqual(got.map((m) => `${m.key}:${m.value}`), input);
    const read = await kcatOk(['-b', broker.bootstrap, '-C', '-t', t, '-e', '-q', '-X', 'check.crcs=true', '-f', '%k:%s\n']);
    assert.deepEqual(read.split('\n').filter(Boolean), input);
  });

  test(`kafkajs produces ${codec.name}; kcat reads it with CRC checks`, async () => {
    assertKcatInstalled();
    const t = await topic();
    const input = lines(codec.name, 25);
    await producer.send({ topic: t, acks: -1, compression: codec.kafkajs, messages: input.map((l) => ({ key: l.split(':')[0], value: l.slice(l.indexOf(':') + 1) })) });
    assert.deepEqual(await storedCodecs(t), [codec.id]);
    const r = await kcat(['-b', broker.bootstrap, '-C', '-t', t, '-e', '-q', '-X', 'check.crcs=true', '-f', '%k:%s\n']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.split('\n').filter(Boolean), input);
  });
}

test('compaction of compressed batches (every codec) keeps the latest value of every key', async () => {
  const t = await topic({ 'cleanup.policy': 'compact', 'segment.bytes': '1024' });
  const latest = new Map<string, string>();
  for (let version = 0; version < 8; version++) {
    const codec = CODECS[version % CODECS.length];
    const messages = Array.from({ length: 5 }, (_, k) => ({ key: `key-${k}`, value: `key-${k} v${version} ${codec.name} ${'.'.repeat(40)}` }));
    await producer.send({ topic: t, acks: -1, compression: codec.kafkajs, messages });
    for (const m of messages) latest.set(m.key, m.value);
  }
  // Fillers close the segments holding the keyed batches (only closed segments are cleaned).
  // Random (incompressible) values, so they fill segments even when compressed.
  for (let i = 0; i < 6; i++) await producer.send({ topic: t, acks: -1, compression: CompressionTypes.ZSTD, messages: [{ key: `filler-${i}`, value: randomBytes(300).toString('hex') }] });
  const before = Number((await admin.fetchTopicOffsets(t))[0].high);
  broker.runMaintenance();
  const got = await consumeAll(kafka, t, latest.size + 6);
  const keyed = got.filter((m) => m.key?.startsWith('key-'));
  assert.deepEqual(new Map(keyed.map((m) => [m.key, m.value])), latest);
  assert.equal(keyed.length, latest.size, `older versions were removed (${before} records before compaction, ${got.length} after)`);
});
