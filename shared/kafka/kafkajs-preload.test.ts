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

test('produce requests are byte-equal to kafkajs\'s own: the native CRC-32C and the unfilled encoder buffers change no byte', async () => {
  const { nativeRecordCrc } = await import('./kafkajs-preload.js');
  assert.equal(nativeRecordCrc, true, 'no record batch was built before the preload');
  // kafkajs's JavaScript CRC-32C, straight from its file (the module the batches use now returns the native one).
  const jsCrc = require('kafkajs/src/protocol/recordBatch/crc32C/crc32C.js') as (b: Buffer) => number;
  const batchCrc = require('kafkajs/src/protocol/recordBatch/crc32C') as (b: Buffer) => number;
  assert.notEqual(batchCrc, jsCrc);
  for (const size of [0, 1, 7, 64, 1000, 5600, 70_000]) {
    const b = Buffer.alloc(size);
    for (let i = 0; i < size; i++) b[i] = (i * 131 + size) & 0xff;
    assert.equal(batchCrc(b), jsCrc(b) >>> 0, `${size} bytes`);
  }
  // A whole Produce v7 request: its record batch CRC checks against the JS CRC of the batch body,
  // and no byte is left unwritten (a buffer prefilled with garbage encodes the same).
  const produce = (require('kafkajs/src/protocol/requests/produce') as { protocol(o: { version: number }): (a: unknown) => { request: { encode(): Promise<{ buffer: Buffer }> } } }).protocol({ version: 7 });
  const messages = Array.from({ length: 20 }, (_, i) => ({ key: Buffer.from(`key-${i}`), value: Buffer.alloc(100 + i * 300, 0x41 + (i % 26)), timestamp: 1_700_000_000_000 + i, headers: { h: `v${i}` } }));
  const request = { acks: -1, timeout: 30_000, transactionalId: null, producerId: 7, producerEpoch: 0, compression: 0, topicData: [{ topic: 'email.events', partitions: [{ partition: 3, firstSequence: 11, messages }] }] };
  const first = (await produce(request).request.encode()).buffer;
  // The same request with every grown buffer full of garbage: a byte an encoder skipped would show.
  type Grow = { prototype: { ensureAvailable(this: { buf: Buffer; offset: number }, n: number): void } };
  const Encoder = require('kafkajs/src/protocol/encoder') as Grow;
  const grow = Encoder.prototype.ensureAvailable;
  Encoder.prototype.ensureAvailable = function (n) {
    const before = this.buf;
    grow.call(this, n);
    if (this.buf !== before) this.buf.fill(0xee, this.offset);
  };
  let second: Buffer;
  try {
    second = (await produce(request).request.encode()).buffer;
  } finally {
    Encoder.prototype.ensureAvailable = grow;
  }
  assert.ok(first.equals(second));
  // The record batch: baseOffset (8), length (4), leaderEpoch (4), magic 2 (1), CRC (4), then the CRC'd body to its end.
  const batchAt = second.indexOf(Buffer.from([0x02]));
  assert.ok(batchAt > 0);
  const length = second.readInt32BE(batchAt - 8);
  const crc = second.readUInt32BE(batchAt + 1);
  const body = second.subarray(batchAt + 5, batchAt - 4 + length);
  assert.equal(crc, jsCrc(body) >>> 0);
});
