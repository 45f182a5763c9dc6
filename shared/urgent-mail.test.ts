import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_TRACKED, UrgentMail } from './urgent-mail.js';

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

test('a message reported with its id counts until it is done, or until the window passed if it never is', () => {
  let now = 1_000_000;
  const u = new UrgentMail(() => now);
  u.seen('critical', 'm1');
  u.seen('critical', 'm2');
  assert.equal(u.moreUrgentWithin('transactional', 3000), true);
  u.done('m1');
  assert.equal(u.moreUrgentWithin('transactional', 3000), true, 'm2 is still on its way');
  u.done('m2');
  assert.equal(u.moreUrgentWithin('transactional', 3000), false, 'both through: no need to give way any longer');
  // One that is never done (its dispatcher runs in another process) counts for the window.
  u.seen('transactional', 'm3');
  now += 2999;
  assert.equal(u.moreUrgentWithin('bulk', 3000), true);
  now += 1;
  assert.equal(u.moreUrgentWithin('bulk', 3000), false);
  // Without an id: the whole window, whatever is done.
  u.seen('critical');
  u.done('m1');
  now += 2999;
  assert.equal(u.moreUrgentWithin('transactional', 3000), true);
  now += 1;
  assert.equal(u.moreUrgentWithin('transactional', 3000), false);
});

test('an id reported again counts from its latest arrival; done messages are forgotten; bulk is never followed', () => {
  let now = 1_000_000;
  const u = new UrgentMail(() => now);
  u.seen('critical', 'm1');
  now += 2000;
  u.seen('critical', 'm1');
  now += 2000;
  assert.equal(u.moreUrgentWithin('transactional', 3000), true, 'the second report is 2 s old');
  u.done('m1');
  assert.equal(u.moreUrgentWithin('transactional', 3000), false);
  u.seen('bulk', 'b1');
  assert.equal(u.moreUrgentWithin('bulk', 3000), false);
  assert.equal((u as unknown as { pending: Map<string, number> }).pending.size, 0, 'nothing left behind');
});

test(`beyond ${MAX_TRACKED} messages followed per priority, the rest count for the whole window`, () => {
  let now = 1_000_000;
  const u = new UrgentMail(() => now);
  for (let i = 0; i < MAX_TRACKED + 5; i++) u.seen('critical', `c${i}`);
  for (let i = 0; i < MAX_TRACKED + 5; i++) u.done(`c${i}`);
  assert.equal(u.moreUrgentWithin('transactional', 3000), true, 'the five beyond the bound were not followed: the window holds');
  now += 3000;
  assert.equal(u.moreUrgentWithin('transactional', 3000), false);
  // Done and expired entries leave the queue, so a later burst is followed by id again.
  u.seen('critical', 'late');
  u.done('late');
  assert.equal(u.moreUrgentWithin('transactional', 3000), false);
});
