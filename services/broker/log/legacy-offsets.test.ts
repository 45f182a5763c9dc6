import { test } from 'node:test';
import assert from 'node:assert/strict';
import { legacyOffsetsBefore, type LegacyLookup } from './legacy-offsets.js';

// Three closed segments written at t=100, 200, 300 and an active one (offsets 30-39) at "now".
const log: LegacyLookup = {
  segments: [
    { baseOffset: 0, lastModified: 100, size: 10 },
    { baseOffset: 10, lastModified: 200, size: 10 },
    { baseOffset: 20, lastModified: 300, size: 10 },
    { baseOffset: 30, lastModified: 400, size: 10 },
  ],
  logStartOffset: 5,
  endOffset: 40,
  now: 1000,
};

const table: Array<[string, LegacyLookup, number, number, number[]]> = [
  ['latest: the end offset first', log, -1, 1, [40]],
  ['latest, several: the end, then segment starts', log, -1, 3, [40, 30, 20]],
  ['earliest: the log start, not the first segment base', log, -2, 5, [5]],
  ['a time between segments: the newest segment written by then, and older ones', log, 250, 10, [10, 5]],
  ['a time before every segment: none', log, 50, 10, []],
  ['maxNumOffsets 0: none', log, -1, 0, []],
  ['an unfsynced tail: never past the high watermark', { ...log, endOffset: 35 }, -1, 2, [35, 30]],
  ['an empty active segment adds no point of its own', { ...log, segments: [...log.segments.slice(0, 3), { baseOffset: 30, lastModified: 0, size: 0 }], endOffset: 30 }, -1, 2, [30, 20]],
];

for (const [name, shape, ts, max, expected] of table) {
  test(`ListOffsets v0: ${name}`, () => {
    assert.deepEqual(legacyOffsetsBefore(shape, ts, max), expected);
  });
}
