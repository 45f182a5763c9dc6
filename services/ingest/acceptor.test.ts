import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { Acceptor, BATCH_SLICE } from './acceptor.js';
import { EventPublisher } from '../../shared/events.js';
import type { BatchingProducer, SendResult } from '../../shared/kafka/batching-producer.js';
import type { IdempotencyStore } from './idempotency-store.js';
import { UrgentMail } from '../../shared/urgent-mail.js';

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
    urgent: new UrgentMail(),
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

/** Runs `work` with a marker logged at every turn of the event loop; returns the records logged between two markers, per turn (the first turn left out). */
async function recordsPerTurn(log: string[], work: () => Promise<unknown>): Promise<number[]> {
  let running = true;
  const tick = (): void => {
    log.push('tick');
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  await work();
  running = false;
  const groups = log.join(',').split('tick').slice(1, -1);
  return groups.map((g) => g.split(',').filter((x) => x === 'record').length);
}

test('batches in flight together each take a slice per turn, and take turns between them within GIVE_WAY_MS of a more urgent message', async () => {
  const batch = (from: number) => Array.from({ length: BATCH_SLICE * 4 }, (_, i) => item(from + i));
  // No more urgent message: two transactional batches, a slice each per turn.
  const calm: string[] = [];
  const a = acceptor(calm);
  const turns: boolean[] = [];
  a.on('slice', (gaveWay: boolean) => turns.push(gaveWay));
  const perTurnCalm = await recordsPerTurn(calm, () => Promise.all([a.acceptBatch('acme', batch(0)), a.acceptBatch('acme', batch(1000))]));
  assert.equal(Math.max(...perTurnCalm), 2 * BATCH_SLICE);
  assert.deepEqual(turns, Array(2 * 3).fill(false));

  // A critical message just came in: the batches' slices go one per turn between them.
  const urgent: string[] = [];
  const b = acceptor(urgent);
  const shared: boolean[] = [];
  b.on('slice', (gaveWay: boolean) => shared.push(gaveWay));
  await b.accept('acme', { ...item(9999), priority: 'critical' } as Parameters<Acceptor['accept']>[1]);
  urgent.length = 0;
  const results: Awaited<ReturnType<Acceptor['acceptBatch']>>[] = [];
  const perTurnUrgent = await recordsPerTurn(urgent, async () => results.push(...(await Promise.all([b.acceptBatch('acme', batch(0)), b.acceptBatch('acme', batch(1000))]))));
  assert.equal(Math.max(...perTurnUrgent), BATCH_SLICE);
  assert.deepEqual(shared, Array(2 * 3).fill(true));
  assert.equal(urgent.filter((x) => x === 'record').length, 2 * 4 * BATCH_SLICE);
  for (const r of results) assert.deepEqual(r.map((x) => x.status), Array(4 * BATCH_SLICE).fill(202));

  // Critical batches do not give way to a critical message; bulk ones give way to a transactional one.
  const mixed: string[] = [];
  const c = acceptor(mixed);
  await c.accept('acme', { ...item(9999), priority: 'critical' } as Parameters<Acceptor['accept']>[1]);
  const withCritical = (from: number) => batch(from).map((x) => ({ ...x, priority: 'critical' }));
  const perTurnMixed = await recordsPerTurn(mixed, () => Promise.all([c.acceptBatch('acme', withCritical(0)), c.acceptBatch('acme', withCritical(1000))]));
  assert.equal(Math.max(...perTurnMixed), 2 * BATCH_SLICE);
  const bulky: string[] = [];
  const d = acceptor(bulky);
  await d.accept('acme', item(9999));
  const bulk = (from: number) => batch(from).map((x) => ({ ...x, priority: 'bulk' }));
  const perTurnBulk = await recordsPerTurn(bulky, () => Promise.all([d.acceptBatch('acme', bulk(0)), d.acceptBatch('acme', bulk(1000))]));
  assert.equal(Math.max(...perTurnBulk), BATCH_SLICE);
});
