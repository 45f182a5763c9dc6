import { test } from 'node:test';
import assert from 'node:assert/strict';
import { groupExpired, type GroupActivity } from './group-expiry.js';

const DAY = 24 * 3600_000;
const now = 100 * DAY;
const empty = (over: Partial<GroupActivity>): GroupActivity => ({ members: 0, state: 'Empty', emptySince: now - 10 * DAY, lastCommitAt: null, ...over });

const table: Array<[string, GroupActivity, boolean]> = [
  ['empty for longer than the retention, no commits', empty({}), true],
  ['empty, old commits', empty({ lastCommitAt: now - 8 * DAY }), true],
  ['empty, a commit within the retention (a standalone commit)', empty({ lastCommitAt: now - DAY }), false],
  ['became empty within the retention, old commits', empty({ emptySince: now - DAY, lastCommitAt: now - 30 * DAY }), false],
  ['exactly at the retention: kept', empty({ emptySince: now - 7 * DAY }), false],
  ['members, old commits', empty({ members: 2, state: 'Stable', lastCommitAt: now - 30 * DAY }), false],
  ['rebalancing with no members yet', empty({ state: 'PreparingRebalance' }), false],
];
for (const [name, g, expected] of table) {
  test(`group expiry (7-day retention): ${name} → ${expected ? 'deleted' : 'kept'}`, () => {
    assert.equal(groupExpired(g, now, 7 * DAY), expected);
  });
}
