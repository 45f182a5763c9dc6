import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ScheduleBook } from './schedule-book.js';

const body = Buffer.from('{}');
const entry = (id: string, sendAt: number, offset: number, tenant = 'acme') => ({ id, tenant, priority: 'bulk' as const, sendAt, partition: 0, offset, body });

test('takeDue releases due entries with bodies in sendAt order; later ones wait; bodies beyond the horizon are re-read', () => {
  const book = new ScheduleBook(1000);
  book.add(entry('b', 200, 1), 0);
  book.add(entry('a', 100, 2), 0);
  book.add(entry('far', 5000, 0), 0);
  assert.deepEqual(book.takeDue(150).ready.map((e) => e.id), ['a']);
  assert.deepEqual(book.takeDue(250).ready.map((e) => e.id), ['b']);
  assert.equal(book.nextDue(), 5000);
  // 'far' has no body yet: once within the horizon, its partition is re-read from its offset.
  assert.equal(book.takeDue(3000).reread.size, 0);
  assert.deepEqual([...book.takeDue(4500).reread], [[0, 0]]);
  book.fillBody('far', 0, 0, body, 4500);
  assert.deepEqual(book.takeDue(5000).ready.map((e) => e.id), ['far']);
});

test('cancel: pending → cancelled (never due), releasing or released → too late, another tenant (acme vs acme/eu) → unknown', () => {
  const book = new ScheduleBook(1000);
  book.add(entry('m1', 100, 0, 'acme/eu'), 0);
  book.add(entry('m2', 100, 1, 'acme/eu'), 0);
  book.add(entry('m3', 500, 2, 'acme/eu'), 0);
  assert.equal(book.cancel('m1', 'acme').kind, 'unknown');
  assert.equal(book.cancel('m1', 'acme/eu').kind, 'cancelled');
  const { ready } = book.takeDue(100);
  assert.deepEqual(ready.map((e) => e.id), ['m2']);
  assert.equal(book.cancel('m2', 'acme/eu').kind, 'too-late');
  book.released(ready);
  assert.equal(book.cancel('m2', 'acme/eu').kind, 'too-late');
  assert.equal(book.cancel('m2', 'acme').kind, 'unknown');
  assert.equal(book.cancel('nope', 'acme/eu').kind, 'unknown');
  // The committed offset stays at the oldest entry still waiting.
  assert.equal(book.commitOffset(0, 3), 2);
});
