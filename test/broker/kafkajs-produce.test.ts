/**
 * kafkajs producers against the embedded broker: every acks level, gzip, keys/headers/partitions,
 * and the idempotent producer — including a retried request at the wire level, which must be
 * answered with its original offset and never stored twice.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CompressionTypes, type Admin, type Kafka, type Producer } from 'kafkajs';
import { startTestBroker, uniqueName, waitFor, type TestBroker } from '../helpers/broker.js';
import { consumeAll, testKafka } from './support/kafkajs-clients.js';
import { API, WireClient, parseProduceV3, produceBody, metadataBody, parseMetadataV1 } from './support/wire-client.js';
import { encodeBatch } from './support/batch-encoder.js';
import { holdFsyncs } from './support/fsync-hold.js';

let broker: TestBroker;
let kafka: Kafka;
let admin: Admin;
const producers: Producer[] = [];
const wires: WireClient[] = [];

before(async () => {
  broker = await startTestBroker();
  kafka = testKafka(broker.bootstrap);
  admin = kafka.admin();
  await admin.connect();
});

after(async () => {
  for (const p of producers) await p.disconnect();
  for (const w of wires) w.close();
  await admin.disconnect();
  await broker.destroy();
});

async function producer(opts: Parameters<Kafka['producer']>[0] = {}): Promise<Producer> {
  const p = kafka.producer({ allowAutoTopicCreation: false, ...opts });
  producers.push(p);
  await p.connect();
  return p;
}

async function topic(partitions = 1): Promise<string> {
  const name = uniqueName('produce');
  await admin.createTopics({ topics: [{ topic: name, numPartitions: partitions }] });
  return name;
}

async function highWatermark(name: string, partition = 0): Promise<number> {
  const offsets = await admin.fetchTopicOffsets(name);
  return Number(offsets.find((o) => o.partition === partition)!.high);
}

describe('acks', () => {
  for (const acks of [-1, 1] as const) {
    test(`acks=${acks}: every send is acknowledged with consecutive offsets and is readable`, async () => {
      const t = await topic();
      const p = await producer();
      const offsets: string[] = [];
      for (let i = 0; i < 5; i++) {
        const [r] = await p.send({ topic: t, acks, messages: [{ key: `k${i}`, value: `v${i}` }, { key: `k${i}b`, value: `v${i}b` }] });
        assert.equal(r.errorCode, 0);
        offsets.push(r.baseOffset as string);
      }
      assert.deepEqual(offsets, ['0', '2', '4', '6', '8']);
      const got = await consumeAll(kafka, t, 10);
      assert.deepEqual(got.map((m) => [m.offset, m.value]), offsets.flatMap((o, i) => [[Number(o), `v${i}`], [Number(o) + 1, `v${i}b`]]));
    });
  }

  test('acks=0: no response is sent, the connection keeps answering later requests in order', async () => {
    const t = await topic();
    const p = await producer();
    // Fire-and-forget sends interleaved with acknowledged ones on the same connection: a
    // response queue waiting for an acks=0 answer that never comes would hang the acks=1 sends.
    const sends: Array<Promise<unknown>> = [];
    for (let i = 0; i < 20; i++) {
      sends.push(p.send({ topic: t, acks: 0, messages: [{ value: `zero-${i}` }] }));
      if (i % 5 === 4) sends.push(p.send({ topic: t, acks: 1, messages: [{ value: `one-${i}` }] }));
    }
    const results = await Promise.all(sends);
    assert.equal(results.length, 24);
    await waitFor(async () => (await highWatermark(t)) === 24, 10_000, 'all 24 records durable');
    const got = await consumeAll(kafka, t, 24);
    assert.equal(new Set(got.map((m) => m.value)).size, 24);
  });

  test('acks=0 over the wire: nothing comes back, and the next request on the socket is answered', async () => {
    const t = await topic();
    const w = await WireClient.connect(broker.bootstrap);
    wires.push(w);
    for (let i = 0; i < 3; i++) w.requestNoResponse(API.Produce, 3, produceBody(t, 0, encodeBatch({ records: [{ value: `x${i}` }] }), 0));
    const [r] = parseProduceV3(await w.request(API.Produce, 3, produceBody(t, 0, encodeBatch({ records: [{ value: 'acked' }] }), 1)));
    assert.deepEqual([r.errorCode, r.baseOffset], [0, 3], 'the acks=1 response is the first one on the wire, for offset 3');
  });
});

test('gzip batches (CompressionTypes.GZIP) keep keys, values, headers and timestamps', async () => {
  const t = await topic();
  const p = await producer();
  const ts = Date.now() - 5_000;
  const messages = Array.from({ length: 50 }, (_, i) => ({
    key: `key-${i}`,
    value: `value-${i}-${'x'.repeat(i * 10)}`,
    headers: { 'trace-id': `t${i}`, n: String(i) },
    timestamp: String(ts + i),
  }));
  await p.send({ topic: t, acks: -1, compression: CompressionTypes.GZIP, messages });
  const got = await consumeAll(kafka, t, 50);
  assert.deepEqual(
    got.map((m) => [m.offset, m.key, m.value, m.headers['trace-id'], m.headers.n, m.timestamp]),
    messages.map((m, i) => [i, m.key, m.value, `t${i}`, String(i), ts + i]),
  );
});

test('sendBatch writes to several topics in one request', async () => {
  const [a, b] = [await topic(), await topic(2)];
  const p = await producer();
  const res = await p.sendBatch({
    acks: -1,
    topicMessages: [
      { topic: a, messages: [{ value: 'a0' }, { value: 'a1' }] },
      { topic: b, messages: [{ partition: 1, value: 'b0' }] },
    ],
  });
  assert.deepEqual(res.map((r) => [r.topicName, r.partition, r.errorCode, r.baseOffset]).sort(), [[a, 0, 0, '0'], [b, 1, 0, '0']].sort());
  assert.deepEqual((await consumeAll(kafka, a, 2)).map((m) => m.value), ['a0', 'a1']);
  assert.deepEqual((await consumeAll(kafka, b, 1)).map((m) => [m.partition, m.value]), [[1, 'b0']]);
});

test('messages go to the partition asked for, and null keys/values round-trip', async () => {
  const t = await topic(3);
  const p = await producer();
  const r = await p.send({
    topic: t,
    acks: -1,
    messages: [
      { partition: 2, key: null, value: 'p2' },
      { partition: 0, key: 'k', value: null },
      { partition: 1, key: 'k1', value: '' },
    ],
  });
  assert.deepEqual(r.map((x) => x.partition).sort(), [0, 1, 2]);
  const got = await consumeAll(kafka, t, 3);
  const byPartition = Object.fromEntries(got.map((m) => [m.partition, [m.key, m.value]]));
  assert.deepEqual(byPartition, { 0: ['k', null], 1: ['k1', ''], 2: [null, 'p2'] });
});

test('producing to an unknown partition or topic fails with a clear error, and auto-creation follows the request', async () => {
  const t = await topic(1);
  const w = await WireClient.connect(broker.bootstrap);
  wires.push(w);
  const [r] = parseProduceV3(await w.request(API.Produce, 3, produceBody(uniqueName('never-created'), 0, encodeBatch({ records: [{ value: 'x' }] }))));
  assert.equal(r.errorCode, 3, 'UNKNOWN_TOPIC_OR_PARTITION (Produce never creates topics)');
  const [r5] = parseProduceV3(await w.request(API.Produce, 3, produceBody(t, 5, encodeBatch({ records: [{ value: 'x' }] }))));
  assert.equal(r5.errorCode, 3, 'a partition the topic does not have');
  const [neg] = parseProduceV3(await w.request(API.Produce, 3, produceBody(t, -1, encodeBatch({ records: [{ value: 'x' }] }))));
  assert.equal(neg.errorCode, 3);
  const [nil] = parseProduceV3(await w.request(API.Produce, 3, produceBody(t, 0, null)));
  assert.equal(nil.errorCode, 2, 'null records: CORRUPT_MESSAGE');
  const meta = parseMetadataV1(await w.request(API.Metadata, 1, metadataBody(['bad name!', '', '.', '..', 'a'.repeat(250), `ok-${'a'.repeat(200)}`])));
  assert.equal(meta.get('bad name!'), 17, 'INVALID_TOPIC_EXCEPTION');
  assert.equal(meta.get(''), 17);
  assert.equal(meta.get('.'), 17);
  assert.equal(meta.get('..'), 17);
  assert.equal(meta.get('a'.repeat(250)), 17);
  assert.equal(meta.get(`ok-${'a'.repeat(200)}`), 0, 'a legal long name is auto-created (Metadata v1 always allows it)');
});

describe('idempotent producer', () => {
  test('kafkajs idempotent sends are stored exactly once, in order', async () => {
    const t = await topic(2);
    const p = await producer({ idempotent: true, maxInFlightRequests: 1 });
    for (let i = 0; i < 20; i++) {
      await p.send({ topic: t, acks: -1, messages: [{ partition: i % 2, key: `k${i}`, value: `v${i}` }] });
    }
    assert.equal((await highWatermark(t, 0)) + (await highWatermark(t, 1)), 20);
    const got = await consumeAll(kafka, t, 20);
    for (const part of [0, 1]) {
      const values = got.filter((m) => m.partition === part).map((m) => Number(m.value!.slice(1)));
      assert.deepEqual(values, [...values].sort((a, b) => a - b), 'order kept per partition');
    }
  });

  test('the same produce request sent twice gets the same base offset (not error 46) and is stored once', async () => {
    const t = await topic();
    const w = await WireClient.connect(broker.bootstrap);
    wires.push(w);
    const pid = 900_000 + Math.floor(Math.random() * 1000);
    const batch = (seq: number, values: string[]): Buffer =>
      encodeBatch({ records: values.map((v) => ({ value: v })), producerId: pid, producerEpoch: 0, baseSequence: seq });
    const send = async (b: Buffer, acks = -1): Promise<{ errorCode: number; baseOffset: number }> =>
      parseProduceV3(await w.request(API.Produce, 3, produceBody(t, 0, b, acks)))[0];

    assert.deepEqual(await send(batch(0, ['a', 'b'])), { topic: t, partition: 0, errorCode: 0, baseOffset: 0 });
    assert.deepEqual(await send(batch(2, ['c'])), { topic: t, partition: 0, errorCode: 0, baseOffset: 2 });
    // A retry of the first request (the producer never saw its response):
    assert.deepEqual(await send(batch(0, ['a', 'b'])), { topic: t, partition: 0, errorCode: 0, baseOffset: 0 });
    // A retry of the latest one, twice, concurrently:
    const retries = await Promise.all([send(batch(2, ['c'])), send(batch(2, ['c']))]);
    assert.deepEqual(retries.map((r) => [r.errorCode, r.baseOffset]), [[0, 2], [0, 2]]);
    // A gap is refused; the log is untouched.
    assert.equal((await send(batch(9, ['z']))).errorCode, 45, 'OUT_OF_ORDER_SEQUENCE_NUMBER');
    // An older epoch is fenced once a newer one wrote.
    assert.equal((await send(encodeBatch({ records: [{ value: 'e1' }], producerId: pid, producerEpoch: 1, baseSequence: 0 }))).errorCode, 0);
    assert.equal((await send(batch(3, ['old-epoch']))).errorCode, 47, 'INVALID_PRODUCER_EPOCH');

    await waitFor(async () => (await highWatermark(t)) === 4, 5_000, 'high watermark 4');
    const got = await consumeAll(kafka, t, 4);
    assert.deepEqual(got.map((m) => [m.offset, m.value]), [[0, 'a'], [1, 'b'], [2, 'c'], [3, 'e1']]);
  });

  test('a retry that arrives before the original is durable is acknowledged only once it is', async (t) => {
    // acks=-1 promises fsync: a duplicate's success must not overtake the original's fsync.
    // The retry comes on a second connection, as after a producer's request timeout.
    const name = await topic();
    const [w1, w2] = await Promise.all([WireClient.connect(broker.bootstrap), WireClient.connect(broker.bootstrap)]);
    wires.push(w1, w2);
    const held = holdFsyncs(t);
    const b = encodeBatch({ records: [{ value: 'once' }], producerId: 990_000 + Math.floor(Math.random() * 1000), producerEpoch: 0, baseSequence: 0 });
    const first = w1.request(API.Produce, 3, produceBody(name, 0, Buffer.from(b)));
    await waitFor(() => held.waiting() > 0, 5_000, 'the original to wait for its fsync');
    let retryAnswered = false;
    const retry = w2.request(API.Produce, 3, produceBody(name, 0, Buffer.from(b))).then((r) => {
      retryAnswered = true;
      return r;
    });
    // Waiting for something not to happen needs a bound; a broken broker answers in a few ms.
    await assert.rejects(waitFor(() => retryAnswered, 500), /timed out/, 'the retry was acknowledged before the data was fsynced');
    held.release();
    assert.equal(parseProduceV3(await first)[0].baseOffset, 0);
    assert.equal(parseProduceV3(await retry)[0].baseOffset, 0);
  });
});
