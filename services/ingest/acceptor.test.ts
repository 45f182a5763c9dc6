import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { Acceptor, BATCH_SLICE } from './acceptor.js';
import { EventPublisher } from '../../shared/events.js';
import type { BatchingProducer, SendResult } from '../../shared/kafka/batching-producer.js';
import type { IdempotencyStore } from './idempotency-store.js';

/** A producer that acknowledges every record at once and remembers when each was sent. */
function recordingProducer(log: string[]): BatchingProducer {
  return {
    send: async (topic: string): Promise<SendResult> => {
      if (topic !== 'email.events') log.push('record');
      return { topic, partition: 0, offset: '0' };
    },
  } as unknown as BatchingProducer;
}

function acceptor(log: string[]): Acceptor {
  const producer = recordingProducer(log);
  return new Acceptor({
    producer,
    events: new EventPublisher(producer, 'ingest'),
    idempotency: {} as IdempotencyStore,
    limits: { maxAttachmentBytes: 1 << 20, maxAttachmentsTotalBytes: 1 << 20, maxMessageBytes: 1 << 20 },
    produceTimeoutMs: 5000,
    logger: pino({ level: 'silent' }),
  });
}

const item = (i: number) => ({ from: 'Shop <shop@example.com>', to: [`r${i}@example.org`], subject: `Order ${i}`, text: 'Thanks.' });

test('a batch is accepted a slice at a time: other work gets the event loop between slices, and every item gets its own result in order', async () => {
  const log: string[] = [];
  const n = BATCH_SLICE * 3 + 7;
  const items: unknown[] = Array.from({ length: n }, (_, i) => item(i));
  items[BATCH_SLICE + 1] = { from: 'Shop <shop@example.com>', subject: 'no recipient', text: 'x' };
  // Work that arrives while the batch is being accepted (an I/O callback: a fetch response, an SMTP reply).
  setImmediate(() => log.push('other'));
  const results = await acceptor(log).acceptBatch('acme', items);
  assert.deepEqual(results.map((r) => r.index), [...Array(n).keys()]);
  assert.equal(results[BATCH_SLICE + 1].status, 400);
  assert.ok(results.filter((r) => r.status === 202).every((r) => typeof r.id === 'string'));
  assert.equal(results.filter((r) => r.status === 202).length, n - 1);
  // The other work ran after the first slice's records, long before the batch's last.
  assert.equal(log.indexOf('other'), BATCH_SLICE);
  assert.equal(log.length, n);
});
