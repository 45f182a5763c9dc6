import { test } from 'node:test';
import assert from 'node:assert/strict';
import { batchStatus } from './app.js';

test('batch status: 202 all accepted, 503 nothing accepted for lack of the broker, else 207', () => {
  const cases: Array<[number[], number]> = [
    [[202, 202], 202],
    [[202, 400], 207],
    [[400, 413], 207],
    [[503, 503], 503],
    [[503, 400], 503],
    [[202, 503], 207],
  ];
  for (const [statuses, status] of cases) assert.equal(batchStatus(statuses), status, statuses.join(','));
});
