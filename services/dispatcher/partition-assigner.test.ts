import { test } from 'node:test';
import assert from 'node:assert/strict';
import { alignedAssignment } from './partition-assigner.js';

const parts = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

test('partition p goes to the member at p mod n, members sorted by process id', () => {
  const plan = alignedAssignment(
    [
      { memberId: 'm-z', processId: 'pod-b' },
      { memberId: 'm-a', processId: 'pod-c' },
      { memberId: 'm-q', processId: 'pod-a' },
    ],
    { 'email.dispatch.bulk': parts(7) },
  );
  assert.deepEqual(plan.get('m-q'), { 'email.dispatch.bulk': [0, 3, 6] });
  assert.deepEqual(plan.get('m-z'), { 'email.dispatch.bulk': [1, 4] });
  assert.deepEqual(plan.get('m-a'), { 'email.dispatch.bulk': [2, 5] });
});

test('every group with the same processes agrees, whatever its member ids and member order', () => {
  const owners = (members: Array<{ memberId: string; processId: string }>, topic: string): string[] => {
    const plan = alignedAssignment(members, { [topic]: parts(12) });
    const byPartition: string[] = [];
    for (const [memberId, a] of plan) for (const p of a[topic] ?? []) byPartition[p] = members.find((m) => m.memberId === memberId)!.processId;
    return byPartition;
  };
  const bulk = owners([{ memberId: 'x1', processId: 'p2' }, { memberId: 'x2', processId: 'p1' }, { memberId: 'x3', processId: 'p3' }], 'bulk');
  const tx = owners([{ memberId: 'y9', processId: 'p3' }, { memberId: 'y1', processId: 'p1' }, { memberId: 'y5', processId: 'p2' }], 'tx');
  assert.deepEqual(tx, bulk);
  assert.equal(new Set(bulk).size, 3, 'spread over all three');
});

test('every member gets an entry, also with fewer partitions than members; no members, no plan', () => {
  const plan = alignedAssignment([{ memberId: 'a', processId: '1' }, { memberId: 'b', processId: '2' }, { memberId: 'c', processId: '3' }], { t: [0] });
  assert.deepEqual([...plan], [['a', { t: [0] }], ['b', {}], ['c', {}]]);
  assert.equal(alignedAssignment([], { t: [0, 1] }).size, 0);
});

test('members of one process (or without a process id) are told apart by member id', () => {
  const plan = alignedAssignment([{ memberId: 'b', processId: '' }, { memberId: 'a', processId: '' }], { t: parts(4) });
  assert.deepEqual(plan.get('a'), { t: [0, 2] });
  assert.deepEqual(plan.get('b'), { t: [1, 3] });
});
