/**
 * Long-polling fetches: a consumer waiting in a fetch with a long maxWait gets a record the
 * moment it is appended (the broker wakes the fetch when the high watermark moves), so the
 * stages' long fetch waits (kafka.fetchMaxWaitMs) cost idle wake-ups, not latency.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Admin, Consumer, Kafka, Producer } from 'kafkajs';
import { uniqueName, waitFor, type TestBroker } from '../helpers/broker.js';
import { startBrokerWithClients } from './support/kafkajs-clients.js';
import { API, WireClient, fetchBody, parseFetchV4, parseApiVersionsV0, produceBody, parseProduceV3 } from './support/wire-client.js';
import { encodeBatch } from './support/batch-encoder.js';
import { FETCH_LINGER_MS } from '../../services/broker/handlers/fetch.js';

let broker: TestBroker;
let kafka: Kafka;
let admin: Admin;
let producer: Producer;
const consumers: Consumer[] = [];

before(async () => {
  ({ broker, kafka, admin, producer } = await startBrokerWithClients());
});

after(async () => {
  for (const c of consumers) await c.disconnect();
  await producer.disconnect();
  await admin.disconnect();
  await broker.destroy();
});

const MAX_WAIT_MS = 5000;

describe('long-poll fetch', () => {
  test('a fetch waiting with maxWait 5 s returns a produced record within milliseconds, not at maxWait', async () => {
    const topic = uniqueName('long-poll');
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] });
    const consumer = kafka.consumer({ groupId: uniqueName('long-poll'), maxWaitTimeInMs: MAX_WAIT_MS, sessionTimeout: 15_000, heartbeatInterval: 3000 });
    consumers.push(consumer);
    // Each fetch's start and end, so the record is produced while a fetch is parked on the broker.
    let fetchStarts = 0;
    consumer.on(consumer.events.FETCH_START, () => fetchStarts++);
    const arrived: Array<{ value: string; at: number }> = [];
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => void arrived.push({ value: String(message.value), at: performance.now() }) });

    const latencies: number[] = [];
    for (let i = 0; i < 3; i++) {
      // A fetch is in flight (started, not yet answered): it waits on the broker for data.
      const started = fetchStarts;
      await waitFor(() => fetchStarts > started, 20_000, 'a fetch to start');
      const sentAt = performance.now();
      await producer.send({ topic, acks: -1, messages: [{ value: `m${i}` }] });
      const got = await waitFor(() => arrived.find((a) => a.value === `m${i}`), 20_000, `record m${i}`);
      latencies.push(got.at - sentAt);
    }
    // Woken by the append, a fetch answers at once; a broker that let it sit out maxWait would
    // deliver each record ~5 s late (or a second fetch later).
    for (const ms of latencies) assert.ok(ms < MAX_WAIT_MS / 5, `record arrived ${ms.toFixed(1)} ms after it was produced (maxWait ${MAX_WAIT_MS} ms): ${latencies.map((l) => l.toFixed(1)).join(', ')}`);
    assert.ok(Math.min(...latencies) < 100, `fastest wake-up ${Math.min(...latencies).toFixed(1)} ms`);
  });

  test('a later request on the same connection ends a waiting fetch at once (its answer would wait behind it); other connections keep waiting', async () => {
    const topic = uniqueName('cut-short');
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] });
    const waiter = await WireClient.connect(broker.bootstrap);
    const bystander = await WireClient.connect(broker.bootstrap);
    try {
      const started = performance.now();
      const parked = waiter.request(API.Fetch, 4, fetchBody(topic, 0, 0, MAX_WAIT_MS), 3 * MAX_WAIT_MS).then((b) => ({ body: b, ms: performance.now() - started }));
      const other = bystander.request(API.Fetch, 4, fetchBody(topic, 0, 0, MAX_WAIT_MS), 3 * MAX_WAIT_MS).then(() => performance.now() - started);
      // Frames on one connection are handled in order, so the fetch waits before the next one arrives.
      const versions = parseApiVersionsV0(await waiter.request(API.ApiVersions, 0, Buffer.alloc(0)));
      assert.equal(versions.errorCode, 0);
      const { body, ms } = await parked;
      assert.equal(parseFetchV4(body).errorCode, 0);
      assert.ok(ms < 1000, `the parked fetch was answered after ${Math.round(ms)} ms`);
      // The other connection's fetch was not cut short.
      assert.ok((await other) >= MAX_WAIT_MS - 50, 'the other connection\'s fetch waited its maxWait');
    } finally {
      waiter.close();
      bystander.close();
    }
  });

  test('a produce is acknowledged before the fetches its append wakes are answered (the producer is waiting on its ack)', async () => {
    const topic = uniqueName('ack-first');
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] });
    const reader = await WireClient.connect(broker.bootstrap);
    const writer = await WireClient.connect(broker.bootstrap);
    try {
      const order: string[] = [];
      const fetched = reader.request(API.Fetch, 4, fetchBody(topic, 0, 0, MAX_WAIT_MS), 3 * MAX_WAIT_MS).then((b) => {
        order.push('fetch');
        return parseFetchV4(b);
      });
      // The fetch is parked: an empty topic, nothing to answer yet.
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(order.length, 0, `answered before the produce: ${order.join()}`);
      const acked = writer.request(API.Produce, 3, produceBody(topic, 0, encodeBatch({ records: [{ value: 'first' }] }))).then((b) => {
        order.push('produce');
        return parseProduceV3(b);
      });
      const [ack, fetch] = await Promise.all([acked, fetched]);
      assert.equal(ack[0].errorCode, 0);
      assert.equal(fetch.errorCode, 0);
      assert.ok(fetch.records.length > 0, 'the woken fetch carries the record');
      assert.deepEqual(order, ['produce', 'fetch']);
    } finally {
      reader.close();
      writer.close();
    }
  });

  test('a fetch asking for minBytes is not answered at each smaller append, but within the linger once any arrived; it is as soon as enough has arrived', async () => {
    const topic = uniqueName('min-bytes');
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] });
    const client = await WireClient.connect(broker.bootstrap);
    try {
      const waitMs = 3000;
      let started = performance.now();
      let firstAt = 0;
      const small = client.request(API.Fetch, 4, fetchBody(topic, 0, 0, waitMs, 8192), 3 * waitMs).then((b) => ({ fetch: parseFetchV4(b), ms: performance.now() - started }));
      await new Promise((r) => setTimeout(r, 200));
      for (let i = 0; i < 5; i++) {
        await producer.send({ topic, acks: -1, messages: [{ value: `small ${i}` }] });
        if (i === 0) firstAt = performance.now() - started;
        await new Promise((r) => setTimeout(r, 50));
      }
      const early = await small;
      // Kafka would hold it for the whole maxWait; this broker answers FETCH_LINGER_MS after the first record.
      assert.ok(early.ms >= firstAt + FETCH_LINGER_MS - 100, `answered ${Math.round(early.ms - firstAt)} ms after the first record arrived`);
      assert.ok(early.ms < firstAt + FETCH_LINGER_MS + 400, `answered ${Math.round(early.ms - firstAt)} ms after the first record arrived (linger ${FETCH_LINGER_MS} ms, wait ${waitMs} ms)`);
      assert.equal(early.fetch.highWatermark, 5);
      for (let i = 0; i < 5; i++) assert.ok(early.fetch.records.includes(`small ${i}`), `record ${i} is in the answer`);

      // A record that became readable before the fetch came (its client was busy): the linger counts from the record.
      await producer.send({ topic, acks: -1, messages: [{ value: 'waited' }] });
      const producedAt = performance.now();
      await new Promise((r) => setTimeout(r, 300));
      const late = await client.request(API.Fetch, 4, fetchBody(topic, 0, 5, waitMs, 8192), 3 * waitMs).then((b) => ({ fetch: parseFetchV4(b), at: performance.now() }));
      assert.ok(late.fetch.records.includes('waited'));
      assert.ok(late.at - producedAt < FETCH_LINGER_MS + 250, `answered ${Math.round(late.at - producedAt)} ms after the record became readable`);

      // Nothing arrives: the whole maxWait.
      started = performance.now();
      const idle = await client.request(API.Fetch, 4, fetchBody(topic, 0, 6, 1000, 8192), 3000).then(() => performance.now() - started);
      assert.ok(idle >= 950, `an empty fetch answered after ${Math.round(idle)} ms of its 1000`);

      started = performance.now();
      const big = client.request(API.Fetch, 4, fetchBody(topic, 0, 6, MAX_WAIT_MS, 8192), 3 * MAX_WAIT_MS).then((b) => ({ fetch: parseFetchV4(b), ms: performance.now() - started }));
      await producer.send({ topic, acks: -1, messages: [{ value: 'one small record' }] });
      await producer.send({ topic, acks: -1, messages: [{ value: 'x'.repeat(10_000) }] });
      const enough = await big;
      assert.ok(enough.ms < MAX_WAIT_MS / 2, `answered after ${Math.round(enough.ms)} ms though minBytes had arrived`);
      assert.equal(enough.fetch.highWatermark, 8);
      assert.ok(enough.fetch.records.includes('one small record') && enough.fetch.records.length > 10_000);
    } finally {
      client.close();
    }
  });
});
