import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validate, version } from 'uuid';
import { messageIds } from './message-ids.js';

test('message ids: UUID v7, all different and in order across many pool refills', () => {
  const next = messageIds(4);
  const ids = Array.from({ length: 5_000 }, next);
  assert.ok(ids.every((id) => validate(id) && version(id) === 7));
  assert.equal(new Set(ids).size, ids.length);
  assert.deepEqual([...ids].sort(), ids, 'v7 ids sort in the order they were made');
  // The random part differs between generators (nothing repeats from a shared or zeroed pool).
  const other = messageIds(4);
  const tail = (id: string) => id.slice(-12);
  assert.notEqual(tail(other()), tail(next()));
});
