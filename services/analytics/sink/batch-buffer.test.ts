import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BatchBuffer, batchDue } from './batch-buffer.js';
import { toEventRow } from './event-row.js';
import type { EmailEvent } from '../../../shared/contracts/email-event.js';

const event: EmailEvent = { schemaVersion: 1, eventId: 'e', type: 'sent', messageId: 'm', tenant: 't', at: '2024-05-01T00:00:00Z', stage: 's' };
const at = (partition: number, offset: number) => ({ topic: 'email.events', partition, offset: String(offset) });

test('take: commits the next offset per partition, including records handled without a row', () => {
  const b = new BatchBuffer();
  b.add(toEventRow(event, at(0, 10)), at(0, 10));
  b.add(toEventRow(event, at(1, 5)), at(1, 5));
  b.mark(at(0, 11)); // dead-lettered
  b.add(toEventRow(event, at(0, 12)), at(0, 12));
  const batch = b.take();
  assert.equal(batch.rows.length, 3);
  assert.deepEqual(batch.commits.sort((x, y) => x.partition - y.partition), [
    { topic: 'email.events', partition: 0, offset: '13' },
    { topic: 'email.events', partition: 1, offset: '6' },
  ]);
  assert.ok(b.isEmpty);
  assert.equal(b.size, 0);
});

test('a batch of only skipped records has nothing to insert but something to commit', () => {
  const b = new BatchBuffer();
  b.mark(at(2, 7));
  assert.equal(b.isEmpty, false);
  const batch = b.take();
  assert.deepEqual([batch.rows.length, batch.commits], [0, [{ topic: 'email.events', partition: 2, offset: '8' }]]);
});

test('the token identifies exactly which records a batch holds', () => {
  const tokenOf = (offsets: Array<[number, number]>): string => {
    const b = new BatchBuffer();
    for (const [p, o] of offsets) b.add(toEventRow(event, at(p, o)), at(p, o));
    return b.take().token;
  };
  assert.equal(tokenOf([[0, 1], [0, 2]]), tokenOf([[0, 1], [0, 2]]), 'same records, same token');
  // Same offset range, one record fewer (it was already stored): must not be deduplicated away.
  assert.notEqual(tokenOf([[0, 1], [0, 2], [0, 3]]), tokenOf([[0, 1], [0, 3]]));
  assert.notEqual(tokenOf([[0, 1]]), tokenOf([[1, 1]]));
});

test('ageMs counts from the first record of the batch', () => {
  let now = 1000;
  const b = new BatchBuffer(() => now);
  assert.equal(b.ageMs, 0);
  b.mark(at(0, 1));
  now = 1250;
  b.mark(at(0, 2));
  assert.equal(b.ageMs, 250);
  b.take();
  assert.equal(b.ageMs, 0);
});

test('clear drops buffered rows and their commits', () => {
  const b = new BatchBuffer();
  b.add(toEventRow(event, at(0, 1)), at(0, 1));
  assert.equal(b.clear(), 1);
  assert.ok(b.isEmpty);
});

test('batchDue: full at batchMaxRows; a trickle goes at batchMaxWaitMs; a batch filling fast waits while it keeps the rate, at most batchBusyWaitMs', () => {
  const t = { batchMaxRows: 10_000, batchMaxWaitMs: 1000, batchBusyRowsPerSecond: 1000, batchBusyWaitMs: 5000 };
  assert.deepEqual(batchDue(10_000, 10, t), { due: true, inMs: 0 });
  assert.deepEqual(batchDue(1, 400, t), { due: false, inMs: 600 });
  // A trickle: 30 rows in a second is under 1,000 a second.
  assert.deepEqual(batchDue(30, 1000, t), { due: true, inMs: 0 });
  // 2,700 rows in its first second: it may wait until its average rate falls to 1,000 a second (2.7 s) ...
  assert.deepEqual(batchDue(2700, 1000, t), { due: false, inMs: 1700 });
  assert.deepEqual(batchDue(2700, 2700, t), { due: true, inMs: 0 });
  // ... and while rows keep coming, up to batchBusyWaitMs.
  assert.deepEqual(batchDue(9000, 3000, t), { due: false, inMs: 2000 });
  assert.deepEqual(batchDue(9999, 5000, t), { due: true, inMs: 0 });
  // batchBusyWaitMs equal to (or below) batchMaxWaitMs: the plain rule, whatever the rate.
  for (const busyWait of [1000, 200]) {
    assert.deepEqual(batchDue(5000, 1000, { ...t, batchBusyWaitMs: busyWait }), { due: true, inMs: 0 });
    assert.deepEqual(batchDue(5000, 999, { ...t, batchBusyWaitMs: busyWait }), { due: false, inMs: 1 });
  }
  // No threshold (the sink's default when unset): never busy.
  assert.deepEqual(batchDue(9999, 1000, { ...t, batchBusyRowsPerSecond: Infinity }), { due: true, inMs: 0 });
});
