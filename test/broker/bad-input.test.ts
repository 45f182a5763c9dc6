/**
 * Bad input from one connection never hurts another: garbage, absurd length prefixes,
 * truncated or malformed requests close only the offending connection; unknown APIs and
 * versions get an error answer; corrupt or malformed record batches are refused with
 * CORRUPT_MESSAGE / INVALID_RECORD. Meanwhile a kafkajs producer and consumer keep working.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { crc32c } from '@node-rs/crc32';
import type { Admin, Consumer, Kafka, Producer } from 'kafkajs';
import { uniqueName, waitFor, type TestBroker } from '../helpers/broker.js';
import { FAST_CONSUMER, startBrokerWithClients } from './support/kafkajs-clients.js';
import { API, Enc, WireClient, fetchBody, frame, metadataBody, parseFetchV4, parseApiVersionsV0, parseMetadataV1, parseProduceV3, produceBody } from './support/wire-client.js';
import { encodeBatch } from './support/batch-encoder.js';

let broker: TestBroker;
let kafka: Kafka;
let admin: Admin;
let producer: Producer;
let consumer: Consumer;
let topic: string;
const wires: WireClient[] = [];
const consumed = new Set<string>();
let sent = 0;
let sending = true;
let sendLoop: Promise<void>;
let sendError: unknown;

before(async () => {
  ({ broker, kafka, admin, producer } = await startBrokerWithClients());
  topic = uniqueName('bystander');
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] });
  consumer = kafka.consumer({ groupId: uniqueName('bystander-group'), ...FAST_CONSUMER });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({ eachMessage: async ({ message }) => void consumed.add(message.value!.toString()) });
  // A well-behaved client working through every test below.
  sendLoop = (async () => {
    while (sending) {
      try {
        await producer.send({ topic, acks: -1, messages: [{ value: `ok-${sent}` }] });
        sent++;
      } catch (err) {
        sendError = err;
        return;
      }
    }
  })();
});

after(async () => {
  sending = false;
  await sendLoop;
  for (const w of wires) w.close();
  await consumer.disconnect();
  await producer.disconnect();
  await admin.disconnect();
  await broker.destroy();
});

async function wire(): Promise<WireClient> {
  const w = await WireClient.connect(broker.bootstrap);
  wires.push(w);
  return w;
}

/** The bystander keeps producing and consuming: fresh sends after the bad input all arrive. */
async function bystanderStillWorks(): Promise<void> {
  const from = sent;
  await waitFor(() => sent >= from + 3 || sendError, 10_000, 'the bystander producer to make progress');
  assert.equal(sendError, undefined, `the bystander producer failed: ${String(sendError)}`);
  await waitFor(() => consumed.has(`ok-${from + 2}`), 10_000, 'the bystander consumer to receive new records');
}

/** A connection that was closed by the broker; a new one is served normally. */
async function closedAndBrokerServes(w: WireClient): Promise<void> {
  await waitFor(() => w.isClosed, 5_000, 'the broker to close the offending connection');
  const fresh = await wire();
  const { errorCode, apis } = parseApiVersionsV0(await fresh.request(API.ApiVersions, 0, Buffer.alloc(0)));
  assert.equal(errorCode, 0);
  assert.ok(apis.length > 10);
  await bystanderStillWorks();
}

describe('malformed frames close only their connection', () => {
  const cases: Array<[string, Buffer]> = [
    ['an HTTP request (garbage)', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')],
    ['random bytes', Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 256))],
    ['a 2 GiB length prefix', new Enc().int32(0x7fffffff).int32(1).buffer],
    ['a negative length prefix', new Enc().int32(-5).int32(0).buffer],
    ['a length too short for a header', new Enc().int32(4).int32(0).buffer],
    ['a header without the client id', new Enc().int32(8).int16(18).int16(0).int32(1).buffer],
    ['an array count far beyond the frame (Metadata)', frame(API.Metadata, 1, 1, new Enc().int32(1_000_000).buffer)],
    ['a string running past the frame (Metadata)', frame(API.Metadata, 1, 1, new Enc().int32(1).int16(500).push(Buffer.from('abc')).buffer)],
    ['a truncated Produce body', frame(API.Produce, 3, 1, produceBody('t', 0, encodeBatch({ records: [{ value: 'x' }] })).subarray(0, 20))],
    ['a null where a string is required', frame(API.Metadata, 1, 1, new Enc().int32(1).int16(-1).buffer)],
  ];
  for (const [name, bytes] of cases) {
    test(name, async () => {
      const w = await wire();
      w.writeRaw(bytes);
      await closedAndBrokerServes(w);
    });
  }

  test('a frame cut off mid-way by a client that disconnects', async () => {
    const w = await wire();
    const whole = frame(API.Metadata, 1, 1, metadataBody([topic]));
    w.writeRaw(whole.subarray(0, whole.length - 3));
    w.close();
    const fresh = await wire();
    assert.equal(parseMetadataV1(await fresh.request(API.Metadata, 1, metadataBody([topic]))).get(topic), 0);
    await bystanderStillWorks();
  });

  test('many bad connections at once', async () => {
    const ws = await Promise.all(Array.from({ length: 50 }, () => wire()));
    ws.forEach((w, i) => w.writeRaw(i % 2 ? Buffer.from('\u0000\u0000\u0000\u0001!') : new Enc().int32(0x7ffffff0).buffer));
    await waitFor(() => ws.every((w) => w.isClosed), 10_000, 'all bad connections closed');
    await bystanderStillWorks();
  });
});

describe('unknown APIs and versions are handled as Kafka handles them', () => {
  // Kafka closes the connection of a request it has no layout for: an error code alone is not a
  // response any client can decode (the response layout depends on the API and version).
  test('an unknown API key closes that connection only', async () => {
    const w = await wire();
    await assert.rejects(w.request(999, 0, Buffer.alloc(0)), /connection closed/);
    await closedAndBrokerServes(w);
  });

  for (const [name, key, version, body] of [
    ['Metadata v99', API.Metadata, 99, () => metadataBody([topic])],
    ['Fetch v12 (flexible, not advertised)', API.Fetch, 12, () => fetchBody(topic, 0, 0)],
  ] as const) {
    test(`an unsupported version of a known API (${name}) closes that connection only`, async () => {
      const w = await wire();
      await assert.rejects(w.request(key, version, body()), /connection closed/);
      await closedAndBrokerServes(w);
    });
  }

  test('a too-new ApiVersions gets the v0 answer listing the supported versions (how librdkafka negotiates)', async () => {
    const w = await wire();
    const { errorCode, apis } = parseApiVersionsV0(await w.request(API.ApiVersions, 3, Buffer.from([0, 0])));
    assert.equal(errorCode, 35);
    const apiVersions = apis.find(([key]) => key === API.ApiVersions);
    assert.deepEqual(apiVersions, [18, 0, 2]);
    await bystanderStillWorks();
  });
});

describe('bad record batches are refused per partition', () => {
  function recrc(b: Buffer): Buffer {
    b.writeUInt32BE(crc32c(b.subarray(21)), 17);
    return b;
  }
  const batches: Array<[string, () => Buffer | null, number]> = [
    ['a corrupt CRC', () => { const b = encodeBatch({ records: [{ value: 'x' }] }); b[b.length - 1] ^= 0x55; return b; }, 2],
    ['a truncated batch', () => encodeBatch({ records: [{ value: 'xyz' }] }).subarray(0, 50), 2],
    ['magic v1 (legacy message format)', () => { const b = encodeBatch({ records: [{ value: 'x' }] }); b[16] = 1; return b; }, 2],
    ['an empty record set', () => Buffer.alloc(0), 2],
    ['null records', () => null, 2],
    ['a header claiming 2^31 offsets', () => encodeBatch({ records: [{ value: 'x' }], lastOffsetDelta: 0x7fffffff }), 87],
    ['gzip flag over records that are not gzip', () => { const b = encodeBatch({ records: [{ value: 'plain' }] }); b.writeInt16BE(1, 21); return recrc(b); }, 87],
    [
      'gzip of something that is not records',
      () => {
        const b = encodeBatch({ records: [{ value: 'x' }] });
        const body = gzipSync(Buffer.from('not a record'));
        const out = Buffer.concat([b.subarray(0, 61), body]);
        out.writeInt32BE(out.length - 12, 8);
        out.writeInt16BE(1, 21);
        return recrc(out);
      },
      87,
    ],
  ];
  for (const [name, make, code] of batches) {
    test(`${name}: error ${code}, nothing stored, the connection keeps working`, async () => {
      const t = uniqueName('bad-batch');
      await admin.createTopics({ topics: [{ topic: t }] });
      const w = await wire();
      const [r] = parseProduceV3(await w.request(API.Produce, 3, produceBody(t, 0, make())));
      assert.equal(r.errorCode, code);
      const [ok] = parseProduceV3(await w.request(API.Produce, 3, produceBody(t, 0, encodeBatch({ records: [{ value: 'fine' }] }))));
      assert.deepEqual([ok.errorCode, ok.baseOffset], [0, 0], 'the refused batch took no offsets');
      assert.equal((await admin.fetchTopicOffsets(t))[0].high, '1');
    });
  }

  test('a request mixing a good and a bad partition: only the bad one fails', async () => {
    const t = uniqueName('mixed');
    await admin.createTopics({ topics: [{ topic: t, numPartitions: 2 }] });
    const bad = encodeBatch({ records: [{ value: 'x' }] });
    bad[bad.length - 1] ^= 1;
    const body = new Enc()
      .string(null)
      .int16(-1)
      .int32(5000)
      .array([t], (e) =>
        e.string(t).array([[0, encodeBatch({ records: [{ value: 'good' }] })], [1, bad]] as Array<[number, Buffer]>, (p, [i, recs]) => p.int32(i).bytes(recs)),
      ).buffer;
    const w = await wire();
    const res = parseProduceV3(await w.request(API.Produce, 3, body));
    assert.deepEqual(res.map((r) => [r.partition, r.errorCode]), [[0, 0], [1, 2]]);
    await bystanderStillWorks();
  });

  test('invalid acks and oversized commit metadata get their error codes', async () => {
    const t = uniqueName('acks');
    await admin.createTopics({ topics: [{ topic: t }] });
    const w = await wire();
    const [r] = parseProduceV3(await w.request(API.Produce, 3, produceBody(t, 0, encodeBatch({ records: [{ value: 'x' }] }), 2)));
    assert.equal(r.errorCode, 21, 'INVALID_REQUIRED_ACKS');
    // OffsetCommit v2, a "simple" commit (generation -1, no member) with 5000 bytes of metadata.
    const commit = (metadata: string): Buffer =>
      new Enc().string(uniqueName('meta-group')).int32(-1).string('').int64(-1)
        .array([t], (e) => e.string(t).array([0], (p) => p.int32(0).int64(1).string(metadata))).buffer;
    const tooLarge = await w.request(8, 2, commit('m'.repeat(5000)));
    assert.equal(tooLarge.readInt16BE(tooLarge.length - 2), 12, 'OFFSET_METADATA_TOO_LARGE');
    const fine = await w.request(8, 2, commit('m'.repeat(100)));
    assert.equal(fine.readInt16BE(fine.length - 2), 0);
  });
});

test('a topic deleted (and another created) while a fetch long-polls it: the fetch ends at once with UNKNOWN_TOPIC_OR_PARTITION', async () => {
  const t = uniqueName('vanishing');
  await admin.createTopics({ topics: [{ topic: t }] });
  const w = await wire();
  await w.request(API.Produce, 3, produceBody(t, 0, encodeBatch({ records: [{ value: 'gone soon' }] })));
  const poll = w.request(API.Fetch, 4, fetchBody(t, 0, 1, 60_000));
  await admin.deleteTopics({ topics: [t] });
  // New files may now reuse the deleted log's file descriptors.
  const other = uniqueName('reuses-fds');
  await admin.createTopics({ topics: [{ topic: other, numPartitions: 3 }] });
  const r = parseFetchV4(await poll);
  assert.deepEqual([r.errorCode, r.records.length], [3, 0]);
  assert.equal(w.isClosed, false);
  await bystanderStillWorks();
});

test('the bystander saw everything it produced', async () => {
  sending = false;
  await sendLoop;
  assert.equal(sendError, undefined);
  await waitFor(() => consumed.size >= sent, 10_000, 'every bystander record consumed');
  assert.ok(sent > 20, `the bystander kept producing (${sent})`);
});
