import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka, logLevel } from 'kafkajs';
import { startTestBroker, uniqueName, waitFor } from '../../../test/helpers/broker.js';
import { sinkFetchOptions } from './fetch-options.js';
import { follower } from '../../../shared/kafka/client.js';

test('sinkFetchOptions: fetches are paced at half the sink\'s batch wait, at most 500 ms', () => {
  assert.equal(sinkFetchOptions(1000).paceMs, 500);
  assert.equal(sinkFetchOptions(60_000).paceMs, 500);
  assert.equal(sinkFetchOptions(200).paceMs, 100);
  assert.equal(sinkFetchOptions(1).paceMs, 1);
});

test('the sink\'s consumer gets events a few fetches at a time, not a fetch per event, and all of them', { timeout: 120_000 }, async (t) => {
  const broker = await startTestBroker();
  t.after(() => broker.destroy());
  const kafka = new Kafka({ clientId: 'fetch-options-test', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
  const topic = uniqueName('events');
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
  await admin.disconnect();

  const { paceMs, ...options } = sinkFetchOptions(1000);
  const consumer = kafka.consumer(follower({ groupId: uniqueName('sink'), ...options }, paceMs));
  const producer = kafka.producer();
  t.after(async () => {
    await consumer.disconnect();
    await producer.disconnect();
  });
  let batches = 0;
  let events = 0;
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachBatch: async ({ batch }) => {
      batches++;
      events += batch.messages.length;
    },
  });
  await producer.connect();

  // One event at a time, as the stages emit them: each lands on the partition on its own.
  const n = 300;
  const value = JSON.stringify({ type: 'sent', pad: 'x'.repeat(200) });
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await producer.send({ topic, messages: [{ key: String(i), value }] });
  const producedMs = performance.now() - t0;
  await waitFor(() => events >= n, 30_000, `${n} events consumed (have ${events})`);
  const elapsedMs = performance.now() - t0;

  assert.equal(events, n);
  // Paced: at most one batch per paceMs (plus the first and the last). A fetch answered as soon
  // as anything arrived gives about one batch per event sent.
  const bound = Math.ceil(elapsedMs / paceMs) + 2;
  assert.ok(batches <= bound, `${batches} batches for ${n} events sent over ${producedMs.toFixed(0)} ms (at most ${bound})`);
});
