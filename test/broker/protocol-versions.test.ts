/**
 * Old protocol versions, answered as Kafka 2.x-3.x answers them: Produce and Fetch are listed
 * from v0 (librdkafka compresses with gzip and snappy only then), ListOffsets v0 is served,
 * Fetch below v4 gets UNSUPPORTED_VERSION per partition (Kafka without down-conversion), and
 * an old message format in Produce v0-2 gets UNSUPPORTED_FOR_MESSAGE_FORMAT.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Admin, Kafka, Producer } from 'kafkajs';
import type { TestBroker } from '../helpers/broker.js';
import { uniqueName } from '../helpers/broker.js';
import { startBrokerWithClients } from './support/kafkajs-clients.js';
import { API, Dec, Enc, WireClient, parseApiVersionsV0 } from './support/wire-client.js';
import { encodeBatch } from './support/batch-encoder.js';

let broker: TestBroker;
let kafka: Kafka;
let admin: Admin;
let producer: Producer;
const wires: WireClient[] = [];

before(async () => {
  ({ broker, kafka, admin, producer } = await startBrokerWithClients());
  void kafka;
});

after(async () => {
  for (const w of wires) w.close();
  await producer.disconnect();
  await admin.disconnect();
  await broker.destroy();
});

async function wire(): Promise<WireClient> {
  const w = await WireClient.connect(broker.bootstrap);
  wires.push(w);
  return w;
}

async function topicWith(n: number): Promise<string> {
  const name = uniqueName('versions');
  await admin.createTopics({ topics: [{ topic: name }] });
  if (n > 0) await producer.send({ topic: name, acks: -1, messages: Array.from({ length: n }, (_, i) => ({ value: `v${i}` })) });
  return name;
}

/** ListOffsets v0: [partition, timestamp, maxNumOffsets] → the old-style offsets array. */
async function listOffsetsV0(w: WireClient, topic: string, timestamp: number, max = 10): Promise<{ errorCode: number; offsets: number[] }> {
  const body = new Enc().int32(-1).array([topic], (e) => e.string(topic).array([0], (p) => p.int32(0).int64(timestamp).int32(max))).buffer;
  const d = new Dec(await w.request(API.ListOffsets, 0, body));
  let out = { errorCode: -1, offsets: [] as number[] };
  d.array((t) => {
    t.string();
    t.array((p) => {
      p.int32();
      out = { errorCode: p.int16(), offsets: p.array((x) => x.int64()) };
    });
  });
  assert.equal(d.remaining, 0, 'the v0 response has exactly the v0 layout');
  return out;
}

test('ApiVersions lists Produce and Fetch from v0 and ListOffsets from v0', async () => {
  const w = await wire();
  const { apis } = parseApiVersionsV0(await w.request(API.ApiVersions, 0, Buffer.alloc(0)));
  const range = (key: number): number[] => (apis.find(([k]) => k === key) ?? []).slice(1);
  assert.deepEqual(range(API.Produce), [0, 7]);
  assert.deepEqual(range(API.Fetch), [0, 11]);
  assert.deepEqual(range(API.ListOffsets), [0, 3]);
});

test('ListOffsets v0 answers latest, earliest and before-a-time with old-style offset arrays', async () => {
  const t = await topicWith(5);
  const w = await wire();
  assert.deepEqual(await listOffsetsV0(w, t, -1, 1), { errorCode: 0, offsets: [5] });
  assert.deepEqual(await listOffsetsV0(w, t, -1), { errorCode: 0, offsets: [5, 0] }, 'several: the end, then segment starts');
  assert.deepEqual(await listOffsetsV0(w, t, -2), { errorCode: 0, offsets: [0] });
  assert.deepEqual(await listOffsetsV0(w, t, -1, 0), { errorCode: 0, offsets: [] }, 'maxNumOffsets 0 asks for none');
  assert.deepEqual(await listOffsetsV0(w, t, Date.now() + 60_000), { errorCode: 0, offsets: [5, 0] }, 'a future time: the end, then the segment start');
  const unknown = await listOffsetsV0(w, uniqueName('missing'), -1);
  assert.equal(unknown.errorCode, 3, 'UNKNOWN_TOPIC_OR_PARTITION');
});

test('Fetch v3 gets UNSUPPORTED_VERSION per partition in a v3 response', async () => {
  const t = await topicWith(2);
  const w = await wire();
  const body = new Enc()
    .int32(-1)
    .int32(0)
    .int32(1)
    .int32(1 << 20)
    .array([t], (e) => e.string(t).array([0], (p) => p.int32(0).int64(0).int32(1 << 20)))
    .buffer;
  const d = new Dec(await w.request(API.Fetch, 3, body));
  d.int32(); // throttle
  const parts: Array<[number, number]> = [];
  d.array((x) => {
    assert.equal(x.string(), t);
    x.array((p) => {
      parts.push([p.int32(), p.int16()]);
      p.int64();
      p.bytes();
    });
  });
  assert.equal(d.remaining, 0);
  assert.deepEqual(parts, [[0, 35]]);
  assert.equal(w.isClosed, false);
});

/** Produce v2 for one partition; the response's [errorCode, baseOffset]. */
async function produceV2(w: WireClient, topic: string, records: Buffer): Promise<[number, number]> {
  const body = new Enc()
    .int16(-1)
    .int32(10_000)
    .array([topic], (e) => e.string(topic).array([0], (p) => p.int32(0).bytes(records)))
    .buffer;
  const d = new Dec(await w.request(API.Produce, 2, body));
  let out: [number, number] = [-1, -1];
  d.array((x) => {
    x.string();
    x.array((p) => {
      p.int32();
      out = [p.int16(), p.int64()];
      p.int64(); // log append time
    });
  });
  d.int32(); // throttle
  assert.equal(d.remaining, 0);
  return out;
}

test('Produce v2 stores record batches v2 and refuses message sets v0/v1 with UNSUPPORTED_FOR_MESSAGE_FORMAT', async () => {
  const t = await topicWith(0);
  const w = await wire();
  assert.deepEqual(await produceV2(w, t, encodeBatch({ records: [{ value: 'a' }, { value: 'b' }] })), [0, 0]);
  // A magic-1 message: offset, size, crc, magic 1, attributes, timestamp, null key, value.
  const message = new Enc().int8(1).int8(0).int64(Date.now()).bytes(null).bytes(Buffer.from('old')).buffer;
  const legacy = new Enc().int64(0).int32(message.length + 4).int32(0).push(message).buffer;
  assert.deepEqual(await produceV2(w, t, legacy), [43, -1]);
  assert.equal((await admin.fetchTopicOffsets(t))[0].high, '2');
});
