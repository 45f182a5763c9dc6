import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ProducerState, type SequenceCheck } from './producer-state.js';
import type { BatchInfo } from './record-batch.js';
import { tempDir } from '../../../test/helpers/broker.js';

const MAX = 0x7fffffff;

function batch(producerId: number, producerEpoch: number, baseSequence: number, records = 1): BatchInfo {
  return {
    position: 0,
    size: 0,
    baseOffset: 0,
    lastOffsetDelta: records - 1,
    attributes: 0,
    baseTimestamp: 0,
    maxTimestamp: 0,
    producerId,
    producerEpoch,
    baseSequence,
    recordCount: records,
  };
}

/** [pid, epoch, firstSeq, records, offset it is stored at when appended] */
type Step = [number, number, number, number, number];

interface Case {
  name: string;
  history: Step[];
  incoming: [number, number, number, number];
  expect: SequenceCheck;
}

const cases: Case[] = [
  { name: 'first batch of a new producer', history: [], incoming: [1, 0, 0, 5], expect: { kind: 'append' } },
  { name: 'unknown producer with a non-zero sequence (state lost to retention) is accepted', history: [], incoming: [1, 0, 7, 1], expect: { kind: 'append' } },
  { name: 'next batch in sequence', history: [[1, 0, 0, 5, 10]], incoming: [1, 0, 5, 2], expect: { kind: 'append' } },
  { name: 'retry of the last batch is a duplicate with its original offset', history: [[1, 0, 0, 5, 10]], incoming: [1, 0, 0, 5], expect: { kind: 'duplicate', baseOffset: 10 } },
  {
    name: 'retry of an earlier cached batch is a duplicate',
    history: [[1, 0, 0, 2, 0], [1, 0, 2, 2, 2], [1, 0, 4, 2, 4], [1, 0, 6, 2, 6], [1, 0, 8, 2, 8]],
    incoming: [1, 0, 2, 2],
    expect: { kind: 'duplicate', baseOffset: 2 },
  },
  {
    name: 'a batch older than the five cached ones is out of order',
    history: [[1, 0, 0, 1, 0], [1, 0, 1, 1, 1], [1, 0, 2, 1, 2], [1, 0, 3, 1, 3], [1, 0, 4, 1, 4], [1, 0, 5, 1, 5]],
    incoming: [1, 0, 0, 1],
    expect: { kind: 'error', error: 'OUT_OF_ORDER_SEQUENCE_NUMBER' },
  },
  { name: 'a gap in sequences is out of order', history: [[1, 0, 0, 5, 0]], incoming: [1, 0, 6, 1], expect: { kind: 'error', error: 'OUT_OF_ORDER_SEQUENCE_NUMBER' } },
  { name: 'an overlapping (not identical) retry is out of order', history: [[1, 0, 0, 5, 0]], incoming: [1, 0, 0, 3], expect: { kind: 'error', error: 'OUT_OF_ORDER_SEQUENCE_NUMBER' } },
  { name: 'a fenced (older) epoch', history: [[1, 3, 0, 1, 0]], incoming: [1, 2, 1, 1], expect: { kind: 'error', error: 'INVALID_PRODUCER_EPOCH' } },
  { name: 'a bumped epoch restarting at sequence 0', history: [[1, 3, 0, 9, 0]], incoming: [1, 4, 0, 1], expect: { kind: 'append' } },
  { name: 'a bumped epoch not starting at 0', history: [[1, 3, 0, 9, 0]], incoming: [1, 4, 9, 1], expect: { kind: 'error', error: 'OUT_OF_ORDER_SEQUENCE_NUMBER' } },
  { name: 'sequences wrap from 2^31-1 to 0', history: [[1, 0, MAX - 1, 2, 0]], incoming: [1, 0, 0, 1], expect: { kind: 'append' } },
  { name: 'a batch spanning the wrap is a duplicate when retried', history: [[1, 0, MAX - 1, 4, 7]], incoming: [1, 0, MAX - 1, 4], expect: { kind: 'duplicate', baseOffset: 7 } },
  { name: 'another producer id is independent', history: [[1, 0, 0, 5, 0]], incoming: [2, 0, 0, 1], expect: { kind: 'append' } },
  { name: 'non-idempotent batches (producer id -1) are never checked', history: [[-1, -1, -1, 1, 0]], incoming: [-1, -1, -1, 1], expect: { kind: 'append' } },
];

describe('ProducerState.check', () => {
  for (const c of cases) {
    test(c.name, () => {
      const s = new ProducerState();
      for (const [pid, epoch, seq, n, offset] of c.history) s.record(batch(pid, epoch, seq, n), offset);
      assert.deepEqual(s.check(batch(...c.incoming)), c.expect);
    });
  }

  test('check does not change state (a rejected batch leaves the next expected sequence alone)', () => {
    const s = new ProducerState();
    s.record(batch(1, 0, 0, 2), 0);
    assert.equal(s.check(batch(1, 0, 5)).kind, 'error');
    assert.equal(s.check(batch(1, 0, 2)).kind, 'append');
  });
});

describe('producer-state snapshots', () => {
  const dir = tempDir('postline-pstate-');
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('a snapshot restores duplicate detection', () => {
    const s = new ProducerState();
    s.record(batch(5, 1, 0, 3), 100);
    s.record(batch(5, 1, 3, 3), 103);
    const file = path.join(dir, 'a.snapshot');
    s.writeSnapshot(file);
    const r = ProducerState.readSnapshot(file);
    assert.ok(r);
    assert.deepEqual(r.check(batch(5, 1, 3, 3)), { kind: 'duplicate', baseOffset: 103 });
    assert.deepEqual(r.check(batch(5, 0, 6, 1)), { kind: 'error', error: 'INVALID_PRODUCER_EPOCH' });
  });

  test('an unreadable snapshot is reported as missing, so the caller replays the log instead', () => {
    const file = path.join(dir, 'torn.snapshot');
    fs.writeFileSync(file, '[[5,{"epoch":1,"batc');
    assert.equal(ProducerState.readSnapshot(file), null);
    assert.equal(ProducerState.readSnapshot(path.join(dir, 'missing.snapshot')), null);
  });
});
