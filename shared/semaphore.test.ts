import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Semaphore } from './semaphore.js';

test('Semaphore: at most size holders; waiters served in order', async () => {
  const s = new Semaphore(2);
  const order: number[] = [];
  await s.acquire();
  await s.acquire();
  const waiters = [1, 2].map((i) => s.acquire().then(() => order.push(i)));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, []);
  s.release();
  await waiters[0];
  s.release();
  await waiters[1];
  assert.deepEqual(order, [1, 2]);
});

test('Semaphore: holds by weight, in arrival order; an oversized request runs alone', async () => {
  const s = new Semaphore(10);
  const granted: string[] = [];
  await s.acquire(6);
  const big = s.acquire(25).then(() => granted.push('big'));
  const small = s.acquire(1).then(() => granted.push('small'));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(granted, [], 'the small request waits behind the big one (no starvation)');
  s.release(6);
  await big;
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(granted, ['big'], 'the oversized request runs once nothing else holds any, and alone');
  s.release(25);
  await small;
  assert.deepEqual(granted, ['big', 'small']);
});
