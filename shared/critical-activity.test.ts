import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CriticalActivity } from './critical-activity.js';

test('idle() resolves at once with no critical work, and when the last critical work settles', async () => {
  const activity = new CriticalActivity(10_000);
  await activity.idle();
  let finish!: () => void;
  const work = activity.track(new Promise<void>((r) => (finish = r)));
  let idled = false;
  const waiting = activity.idle().then(() => (idled = true));
  await new Promise((r) => setImmediate(r));
  assert.equal(idled, false, 'waits while critical work is in flight');
  finish();
  await work;
  await waiting;
  assert.equal(idled, true);
});

test('idle() waits at most maxWaitMs, so other lanes are slowed, never stopped', async () => {
  const activity = new CriticalActivity(30);
  void activity.track(new Promise<void>(() => undefined));
  const t0 = performance.now();
  await activity.idle();
  assert.ok(performance.now() - t0 >= 25);
});

test('a failed critical record still counts as settled', async () => {
  const activity = new CriticalActivity(10_000);
  await assert.rejects(activity.track(Promise.reject(new Error('boom'))));
  await activity.idle();
});

test('maxWaitMs 0 turns yielding off', async () => {
  const activity = new CriticalActivity(0);
  void activity.track(new Promise<void>(() => undefined));
  await activity.idle();
});
