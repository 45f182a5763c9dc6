import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelayMs } from './backoff.js';

test('backoff doubles from the initial delay up to the maximum, for any attempt count', () => {
  const b = { initialMs: 200, maxMs: 5000 };
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map((a) => backoffDelayMs(a, b)), [200, 400, 800, 1600, 3200, 5000, 5000]);
  assert.equal(backoffDelayMs(0, b), 200);
  assert.equal(backoffDelayMs(10_000, b), 5000);
  assert.equal(backoffDelayMs(10_000, { initialMs: 1, maxMs: Number.MAX_SAFE_INTEGER }), 2 ** 30);
});
