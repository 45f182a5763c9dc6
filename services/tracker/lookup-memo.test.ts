import { test } from 'node:test';
import assert from 'node:assert/strict';
import { memoized } from './lookup-memo.js';

test('memoized: one call per key while it is remembered, bounded to the last max keys', () => {
  const calls: string[] = [];
  const upper = memoized((k: string) => (calls.push(k), k.toUpperCase()), 2);
  assert.deepEqual([upper('a'), upper('b'), upper('a'), upper('b')], ['A', 'B', 'A', 'B']);
  assert.deepEqual(calls, ['a', 'b']);
  upper('c'); // evicts a, the least recently used
  upper('b');
  upper('a');
  assert.deepEqual(calls, ['a', 'b', 'c', 'a']);
  // Falsy values are remembered too.
  const empty = memoized((k: string) => (calls.push(k), k === 'x' ? '' : k), 4);
  empty('x');
  empty('x');
  assert.equal(calls.filter((k) => k === 'x').length, 1);
});
