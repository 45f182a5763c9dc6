import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UrgentMail } from './urgent-mail.js';

test('mail more urgent than a priority, within a window: critical over the others, transactional over bulk, never the same or lower', () => {
  let now = 1_000_000;
  const u = new UrgentMail(() => now);
  assert.equal(u.moreUrgentWithin('bulk', 3000), false);
  u.seen('transactional');
  assert.deepEqual([u.moreUrgentWithin('bulk', 3000), u.moreUrgentWithin('transactional', 3000), u.moreUrgentWithin('critical', 3000)], [true, false, false]);
  u.seen('critical');
  assert.deepEqual([u.moreUrgentWithin('bulk', 3000), u.moreUrgentWithin('transactional', 3000), u.moreUrgentWithin('critical', 3000)], [true, true, false]);
  now += 3000;
  assert.deepEqual([u.moreUrgentWithin('bulk', 3000), u.moreUrgentWithin('transactional', 3000)], [false, false]);
  u.seen('bulk');
  assert.equal(u.moreUrgentWithin('bulk', 3000), false);
});
