import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planRetry, retryAfterHint, retryPolicy, scheduledTier } from './retry-policy.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const policy = retryPolicy({
  delay1mMs: MIN,
  delay5mMs: 5 * MIN,
  delay15mMs: 15 * MIN,
  delay1hMs: HOUR,
  maxAgeCriticalMs: HOUR,
  maxAgeTransactionalMs: 24 * HOUR,
  maxAgeBulkMs: 72 * HOUR,
  maxGreylistWaitMs: HOUR,
});

test('tiers follow 1m, 5m, 15m, then hourly', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 9].map(scheduledTier), ['1m', '5m', '15m', '1h', '1h', '1h']);
});

const cases: Array<{ name: string; attempt: number; ageMs: number; priority: 'critical' | 'transactional' | 'bulk'; hintMs?: number; want: string }> = [
  { name: 'first failure waits 1m', attempt: 1, ageMs: 0, priority: 'transactional', want: 'retry 1m' },
  { name: 'second failure waits 5m', attempt: 2, ageMs: 2 * MIN, priority: 'transactional', want: 'retry 5m' },
  { name: 'fourth and later wait 1h', attempt: 7, ageMs: 5 * HOUR, priority: 'bulk', want: 'retry 1h' },
  { name: 'greylist hint of 4 min skips to 5m', attempt: 1, ageMs: 0, priority: 'transactional', hintMs: 4 * MIN, want: 'retry 5m' },
  { name: 'greylist hint shorter than the tier keeps the tier', attempt: 2, ageMs: MIN, priority: 'transactional', hintMs: 30_000, want: 'retry 5m' },
  { name: 'critical past 1h expires', attempt: 4, ageMs: 61 * MIN, priority: 'critical', want: 'expire' },
  { name: 'critical whose next attempt lands past max age expires now', attempt: 4, ageMs: 30 * MIN, priority: 'critical', want: 'expire' },
  { name: 'transactional at 23h with 1h tier would exceed 24h: expire', attempt: 10, ageMs: 23.5 * HOUR, priority: 'transactional', want: 'expire' },
  { name: 'bulk at 23.5h still retries', attempt: 10, ageMs: 23.5 * HOUR, priority: 'bulk', want: 'retry 1h' },
];

for (const c of cases) {
  test(`planRetry: ${c.name}`, () => {
    const now = 1_000_000_000_000;
    const plan = planRetry(policy, { attempt: c.attempt, priority: c.priority, acceptedAt: now - c.ageMs, now, retryAfterMs: c.hintMs });
    const got = plan.action === 'retry' ? `retry ${plan.tier}` : 'expire';
    assert.equal(got, c.want);
    if (plan.action === 'retry') assert.equal(plan.notBefore, now + policy.delays[plan.tier]);
  });
}

test('retryAfterHint reads common greylisting replies', () => {
  assert.equal(retryAfterHint('451 4.7.1 Greylisted, please try again in 300 seconds'), 300_000);
  assert.equal(retryAfterHint('450 4.2.0 Try again later'), undefined);
  assert.equal(retryAfterHint('451 Temporary failure, retry after 5 minutes'), 300_000);
});
