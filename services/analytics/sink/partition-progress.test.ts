import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PartitionProgress, type RecordFate } from './partition-progress.js';

test('records ClickHouse already holds are skipped, the gaps between them are not', () => {
  const p = new PartitionProgress();
  p.reconciled('t/0', new Set(['10', '11', '13']));
  const fates: Array<[string, RecordFate]> = [
    ['10', 'stored'],
    ['11', 'stored'],
    ['12', 'new'], // e.g. a dead-lettered record: no row, so it is handled again
    ['13', 'stored'],
    ['14', 'new'],
  ];
  for (const [offset, fate] of fates) {
    assert.equal(p.fate('t/0', offset), fate, offset);
    p.handled('t/0', offset);
  }
});

test('a rewind to already handled offsets (redelivery after a rebalance) is recognised', () => {
  const p = new PartitionProgress();
  p.reconciled('t/0', new Set());
  for (const o of ['5', '6', '7']) p.handled('t/0', o);
  assert.equal(p.fate('t/0', '6'), 'held');
  assert.equal(p.fate('t/0', '7'), 'held');
  assert.equal(p.fate('t/0', '8'), 'new');
});

test('reset forgets every partition; fate of an unknown partition is an error', () => {
  const p = new PartitionProgress();
  p.reconciled('t/0', new Set(['1']));
  assert.equal(p.isKnown('t/0'), true);
  p.reset();
  assert.equal(p.isKnown('t/0'), false);
  assert.throws(() => p.fate('t/0', '1'));
});
