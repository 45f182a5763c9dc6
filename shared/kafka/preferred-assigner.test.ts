import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assignPreferred } from './preferred-assigner.js';

const parts = (topic: string, n: number) => Array.from({ length: n }, (_, partition) => ({ topic, partition }));

test('assignPreferred: without a preferred member, round-robin over all members (by member id)', () => {
  const a = assignPreferred([{ memberId: 'b', preferred: false }, { memberId: 'a', preferred: false }], parts('t', 4));
  assert.deepEqual(Object.fromEntries(a), { a: { t: [0, 2] }, b: { t: [1, 3] } });
});

test('assignPreferred: every partition of every topic to the preferred members; the others get an empty assignment', () => {
  const a = assignPreferred(
    [{ memberId: 'co-hosted', preferred: false }, { memberId: 'p2', preferred: true }, { memberId: 'p1', preferred: true }],
    [...parts('t', 3), ...parts('u', 1)],
  );
  assert.deepEqual(Object.fromEntries(a), { 'co-hosted': {}, p1: { t: [0, 2] }, p2: { t: [1], u: [0] } });
});
