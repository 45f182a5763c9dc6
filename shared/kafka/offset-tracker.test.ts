import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OffsetTracker } from './offset-tracker.js';

const cases: Array<{ name: string; started: number[]; finished: number[]; commit: string | null }> = [
  { name: 'nothing finished', started: [5, 6, 7], finished: [], commit: null },
  { name: 'in order', started: [5, 6, 7], finished: [5, 6], commit: '7' },
  { name: 'a gap holds the commit back', started: [5, 6, 7], finished: [6, 7], commit: null },
  { name: 'the gap filled commits past everything', started: [5, 6, 7], finished: [7, 6, 5], commit: '8' },
  { name: 'offsets with holes (compacted log)', started: [10, 13, 20], finished: [10, 13], commit: '14' },
];

for (const c of cases) {
  test(`OffsetTracker: ${c.name}`, () => {
    const t = new OffsetTracker();
    c.started.forEach((o) => t.start(String(o)));
    c.finished.forEach((o) => t.finish(String(o)));
    assert.equal(t.takeCommittable(), c.commit);
    assert.equal(t.takeCommittable(), null, 'taking consumes the commit');
  });
}
