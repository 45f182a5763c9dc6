import { beforeEach, afterEach, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Producer, ProducerBatch, RecordMetadata } from 'kafkajs';
import { BatchingProducer } from './batching-producer.js';

/** A kafkajs producer stand-in whose every sendBatch waits until the test acks (or fails) it. */
function heldProducer() {
  const calls: Array<{ batch: ProducerBatch; ack: () => void; fail: (e: Error) => void }> = [];
  const producer = {
    sendBatch: (batch: ProducerBatch) =>
      new Promise<RecordMetadata[]>((resolve, reject) => {
        const topics = batch.topicMessages ?? [];
        calls.push({ batch, ack: () => resolve(topics.map((t) => ({ topicName: t.topic, partition: 0, errorCode: 0 }))), fail: reject });
      }),
  } as unknown as Producer;
  const values = (i: number): string[] => (calls[i].batch.topicMessages ?? []).flatMap((t) => t.messages.map((m) => String(m.value)));
  return { producer, calls, values };
}

// Linger timers run on a mocked clock: "nothing was sent" is then a fact, not a hope about timing.
beforeEach(() => mock.timers.enable({ apis: ['setTimeout'] }));
afterEach(() => mock.timers.reset());
/** Lets promise callbacks (acks, the next send) run. */
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

test('BatchingProducer: records that arrive while a batch is in flight go out together, as soon as it is acked', async () => {
  const { producer, calls, values } = heldProducer();
  const bp = new BatchingProducer(producer, { lingerMs: 1 });
  const first = bp.send('t', { value: 'a' });
  assert.equal(calls.length, 0, 'a record waits for its linger');
  mock.timers.tick(1);
  assert.equal(calls.length, 1, 'the first record went out after its linger');
  const rest = ['b', 'c', 'd'].map((v) => bp.send('t', { value: v }));
  mock.timers.tick(1000);
  await settle();
  assert.equal(calls.length, 1, 'nothing more is sent while the first batch is unacked');
  calls[0].ack();
  await first;
  await settle();
  assert.equal(calls.length, 2);
  assert.deepEqual(values(1), ['b', 'c', 'd'], 'the waiting records form one batch, in order');
  calls[1].ack();
  await Promise.all(rest);
});

test('BatchingProducer: a full batch is sealed while waiting, and sealed batches go out in order', async () => {
  const { producer, calls, values } = heldProducer();
  const bp = new BatchingProducer(producer, { lingerMs: 1, maxBatchRecords: 2 });
  const sends = ['a', 'b', 'c', 'd', 'e'].map((v) => bp.send('t', { value: v }));
  mock.timers.tick(1000);
  assert.deepEqual(values(0), ['a', 'b'], 'a full batch goes at once');
  assert.equal(calls.length, 1);
  calls[0].ack();
  await settle();
  assert.deepEqual(values(1), ['c', 'd']);
  calls[1].ack();
  await settle();
  assert.deepEqual(values(2), ['e']);
  calls[2].ack();
  await Promise.all(sends);
});

test('BatchingProducer: a failed batch rejects its own records only; the next batch still goes', async () => {
  const { producer, calls } = heldProducer();
  const bp = new BatchingProducer(producer, { lingerMs: 1 });
  const a = bp.send('t', { value: 'a' });
  mock.timers.tick(1);
  const b = bp.send('t', { value: 'b' });
  calls[0].fail(new Error('broker gone'));
  await assert.rejects(a, /broker gone/);
  await settle();
  assert.equal(calls.length, 2);
  calls[1].ack();
  await b;
});

test('BatchingProducer: drain sends what waits behind an in-flight batch and resolves when all are acked', async () => {
  const { producer, calls } = heldProducer();
  const bp = new BatchingProducer(producer, { lingerMs: 50 });
  const a = bp.send('t', { value: 'a' });
  const drained = bp.drain();
  assert.equal(calls.length, 1, 'drain does not wait for the linger');
  const b = bp.send('t', { value: 'b' });
  let done = false;
  void drained.then(() => (done = true));
  calls[0].ack();
  await settle();
  assert.equal(calls.length, 2, 'the record queued behind the first batch is sent');
  assert.equal(done, false, 'drain waits for it');
  calls[1].ack();
  await drained;
  await Promise.all([a, b]);
});

test('BatchingProducer: by default an idle producer sends a record at the end of the I/O phase, with no linger timer', async () => {
  const { producer, calls, values } = heldProducer();
  const bp = new BatchingProducer(producer);
  // A single message at rest: every hop of it used to wait a 2 ms linger for company that never came.
  const sent = bp.send('dispatch', { value: 'one' });
  await settle();
  assert.equal(calls.length, 1, 'the record waited for a linger timer (mocked: never fires)');
  assert.deepEqual(values(0), ['one']);
  calls[0].ack();
  await sent;
});

test('BatchingProducer: lingerMs 0 sends at the end of the I/O phase, without a timer, and records sent in one tick go together', async () => {
  const { producer, calls, values } = heldProducer();
  const bp = new BatchingProducer(producer, { lingerMs: 0 });
  // A record and its event, as a stage sends them: in one tick.
  const both = [bp.send('requested', { value: 'record' }), bp.send('events', { value: 'event' })];
  assert.equal(calls.length, 0, 'not sealed inside send: a record sent next in the same tick joins');
  await settle();
  assert.equal(calls.length, 1, 'sent without any (mocked) timer firing');
  assert.deepEqual(values(0), ['record', 'event'], 'one request for both');
  calls[0].ack();
  await Promise.all(both);
});

test('BatchingProducer: warm asks for the topics with a send of no records, and waits for it at most its limit', async () => {
  const { producer, calls } = heldProducer();
  const bp = new BatchingProducer(producer);
  let done = false;
  const warmed = bp.warm(['a', 'b'], 1000).then(() => void (done = true));
  assert.deepEqual(calls[0].batch.topicMessages, [{ topic: 'a', messages: [] }, { topic: 'b', messages: [] }]);
  mock.timers.tick(999);
  await settle();
  assert.equal(done, false, 'still waiting for the metadata');
  mock.timers.tick(1);
  await warmed;
  assert.equal(done, true, 'a broker that does not answer holds start-up no longer than the limit');
});
