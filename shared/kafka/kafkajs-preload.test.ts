import { test } from 'node:test';
import assert from 'node:assert/strict';
import Module, { createRequire } from 'node:module';
import { Kafka, logLevel } from 'kafkajs';
import './kafkajs-preload.js';
import { startTestBroker, waitFor } from '../../test/helpers/broker.js';

const require = createRequire(import.meta.url);
const kafkajsModules = (): string[] => Object.keys(require.cache).filter((k) => k.includes('/kafkajs/src/'));

test('the first produce and offset commit of a process load no kafkajs module (they were loaded at import)', async (t) => {
  const broker = await startTestBroker();
  t.after(() => broker.destroy());
  const kafka = new Kafka({ brokers: [broker.bootstrap], clientId: 'preload', logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  t.after(() => admin.disconnect());
  await admin.createTopics({ topics: [{ topic: 'preload', numPartitions: 1 }] });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  t.after(() => producer.disconnect());
  const consumer = kafka.consumer({ groupId: 'preload', maxWaitTimeInMs: 100 });
  await consumer.connect();
  t.after(() => consumer.disconnect());
  await consumer.subscribe({ topic: 'preload', fromBeginning: true });
  let committed = false;
  consumer.on(consumer.events.COMMIT_OFFSETS, () => void (committed = true));
  let fetches = 0;
  consumer.on(consumer.events.FETCH, () => void fetches++);
  let got = 0;
  await consumer.run({ eachMessage: async () => void got++ });
  // As in a running stage: its consumers have fetched (empty) before the first message comes.
  await waitFor(() => fetches >= 2 || undefined, 20_000, 'the consumer to fetch');

  const before = new Set(kafkajsModules());
  await producer.send({ topic: 'preload', acks: -1, messages: [{ value: 'first' }] });
  await waitFor(() => (got > 0 && committed) || undefined, 20_000, 'the record to be consumed and its offset committed');
  const loaded = kafkajsModules().filter((k) => !before.has(k));
  assert.deepEqual(loaded.map((k) => k.replace(/.*\/kafkajs\/src\//, '')), []);

  // Every later request answers its `require('./v7/request')` from Node's per-parent cache:
  // no module name is resolved again (a resolution per request cost ~12 µs each).
  const internals = Module as unknown as { _resolveFilename: (request: string, ...rest: unknown[]) => string };
  const resolve = internals._resolveFilename;
  const resolved: string[] = [];
  internals._resolveFilename = function (request, ...rest) {
    resolved.push(request);
    return resolve.call(this, request, ...rest);
  };
  try {
    const commits = got;
    await producer.send({ topic: 'preload', acks: -1, messages: [{ value: 'second' }] });
    await waitFor(() => got > commits || undefined, 20_000, 'the second record to be consumed');
    await consumer.commitOffsets([{ topic: 'preload', partition: 0, offset: '2' }]);
  } finally {
    internals._resolveFilename = resolve;
  }
  assert.deepEqual(resolved, []);
});
