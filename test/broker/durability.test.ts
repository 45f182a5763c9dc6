/**
 * The durability contract of `durability: 'group'`, observed with fsyncs held back: consumers
 * never see data that is not yet fsynced (the high watermark is the durable offset), and
 * acks=1 and acks=-1 produces, offset commits and producer-id blocks are answered only once
 * durable (so a client reads its own acks=1 write right after the ack).
 * (Survival across restarts and SIGKILL is in crash-recovery.test.ts.)
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Admin, Kafka } from 'kafkajs';
import { startTestBroker, uniqueName, waitFor, type TestBroker } from '../helpers/broker.js';
import { testKafka } from './support/kafkajs-clients.js';
import { holdFsyncs } from './support/fsync-hold.js';
import {
  API,
  Enc,
  WireClient,
  fetchBody,
  initProducerIdBody,
  listOffsetsBody,
  parseFetchV4,
  parseInitProducerIdV0,
  parseListOffsetsV1,
  parseProduceV3,
  produceBody,
} from './support/wire-client.js';
import { encodeBatch } from './support/batch-encoder.js';

let broker: TestBroker;
let kafka: Kafka;
let admin: Admin;
const wires: WireClient[] = [];

before(async () => {
  broker = await startTestBroker();
  kafka = testKafka(broker.bootstrap);
  admin = kafka.admin();
  await admin.connect();
});

after(async () => {
  for (const w of wires) w.close();
  await admin.disconnect();
  await broker.destroy();
});

async function wire(): Promise<WireClient> {
  const w = await WireClient.connect(broker.bootstrap);
  wires.push(w);
  return w;
}

async function topic(): Promise<string> {
  const name = uniqueName('durable');
  await admin.createTopics({ topics: [{ topic: name }] });
  return name;
}

/** A response must not arrive while fsyncs are held; a bound is needed to wait for a non-event. */
async function notAnsweredWhileHeld(p: Promise<unknown>, what: string): Promise<void> {
  let answered = false;
  void p.then(() => (answered = true), () => (answered = true));
  await assert.rejects(waitFor(() => answered, 500), /timed out/, `${what} was answered before its data was fsynced`);
}

test('acks=1 is answered once the fsync covering it has run; until then consumers and ListOffsets do not see it', async (t) => {
  const name = await topic();
  const w = await wire();
  const [first] = parseProduceV3(await w.request(API.Produce, 3, produceBody(name, 0, encodeBatch({ records: [{ value: 'durable' }] }), -1)));
  assert.equal(first.baseOffset, 0);

  const held = holdFsyncs(t);
  const produce = w.request(API.Produce, 3, produceBody(name, 0, encodeBatch({ records: [{ value: 'pending' }] }), 1));
  await waitFor(() => held.waiting() > 0, 5_000, 'the fsync of the acks=1 write');
  const other = await wire();
  const latest = parseListOffsetsV1(await other.request(API.ListOffsets, 1, listOffsetsBody(name, 0, -1)));
  assert.equal(latest.offset, 1, 'the high watermark stays at the durable offset');
  const fetched = parseFetchV4(await other.request(API.Fetch, 4, fetchBody(name, 0, 1)));
  assert.deepEqual([fetched.errorCode, fetched.highWatermark, fetched.records.length], [0, 1, 0], 'nothing past the durable offset is served');
  await notAnsweredWhileHeld(produce, 'an acks=1 produce');

  // A long-poll for the pending record is woken by the fsync, not before; the ack comes with it.
  const longPoll = other.request(API.Fetch, 4, fetchBody(name, 0, 1, 10_000));
  held.release();
  const [r] = parseProduceV3(await produce);
  assert.deepEqual([r.errorCode, r.baseOffset], [0, 1]);
  const woken = parseFetchV4(await longPoll);
  assert.equal(woken.highWatermark, 2);
  assert.ok(woken.records.length > 0);
});

test('read-your-write: right after an acks=1 send, fetchTopicOffsets and a consumer see the record', async () => {
  const producer = kafka.producer();
  await producer.connect();
  try {
    for (let round = 0; round < 20; round++) {
      const name = await topic();
      await producer.send({ topic: name, acks: 1, messages: [{ value: `r${round}-a` }, { value: `r${round}-b` }] });
      const [offsets] = await admin.fetchTopicOffsets(name);
      assert.equal(offsets.high, '2', `round ${round}: ListOffsets latest right after the ack`);
      const w = await wire();
      const fetched = parseFetchV4(await w.request(API.Fetch, 4, fetchBody(name, 0, 0)));
      assert.equal(fetched.highWatermark, 2, `round ${round}: a fetch right after the ack`);
      assert.ok(fetched.records.length > 0);
    }
  } finally {
    await producer.disconnect();
  }
});

test('acks=-1 is answered only after the fsync', async (t) => {
  const name = await topic();
  const w = await wire();
  const held = holdFsyncs(t);
  const produce = w.request(API.Produce, 3, produceBody(name, 0, encodeBatch({ records: [{ value: 'x' }] }), -1));
  await notAnsweredWhileHeld(produce, 'an acks=-1 produce');
  held.release();
  assert.equal(parseProduceV3(await produce)[0].errorCode, 0);
});

test('an offset commit is answered only after the fsync, and is then visible', async (t) => {
  const name = await topic();
  const groupId = uniqueName('durable-group');
  const w = await wire();
  const held = holdFsyncs(t);
  const commit = new Enc().string(groupId).int32(-1).string('').int64(-1).array([name], (e) => e.string(name).array([0], (p) => p.int32(0).int64(0).string(null))).buffer;
  const answer = w.request(8, 2, commit);
  await notAnsweredWhileHeld(answer, 'an OffsetCommit');
  held.release();
  const body = await answer;
  assert.equal(body.readInt16BE(body.length - 2), 0);
  const [offsets] = await admin.fetchOffsets({ groupId, topics: [name] });
  assert.equal(offsets.partitions[0].offset, '0');
});

test('a producer id from a new block is handed out only once the block is durable', async (t) => {
  // Restart on a fresh directory so the next InitProducerId must reserve a new block.
  const fresh = await startTestBroker();
  t.after(() => fresh.destroy());
  const w = await WireClient.connect(fresh.bootstrap);
  t.after(() => w.close());
  const held = holdFsyncs(t);
  const init = w.request(API.InitProducerId, 0, initProducerIdBody());
  await notAnsweredWhileHeld(init, 'InitProducerId');
  held.release();
  const r = parseInitProducerIdV0(await init);
  assert.deepEqual([r.errorCode, r.producerEpoch], [0, 0]);
  assert.ok(r.producerId >= 0);
});
