import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IdempotencyStore, type ClaimTable } from './idempotency-store.js';
import { mergeClaims, type IdempotencyClaim } from './idempotency-claims.js';

/**
 * A log shared by "replicas": writes are appended in order and every view applies them with
 * mergeClaims, like CompactedTable over a topic; a view sees the log up to its last put or catch-up.
 */
class SharedLog {
  readonly records: Array<[string, IdempotencyClaim]> = [];
  view(): ClaimTable {
    let seen = 0;
    const map = new Map<string, IdempotencyClaim>();
    const catchUp = () => {
      for (; seen < this.records.length; seen++) {
        const [k, v] = this.records[seen];
        map.set(k, mergeClaims(map.get(k), v));
      }
    };
    return {
      get: (k) => map.get(k),
      catchUp: async () => catchUp(),
      put: async (k, v) => {
        await Promise.resolve(); // both writers get to append before either reads back
        this.records.push([k, v]);
        await Promise.resolve();
        catchUp();
        return map.get(k);
      },
    };
  }
}

const fresh = (id: string) => ({ messageId: id, acceptedAt: '2025-01-01T00:00:00.000Z' });

test('two replicas claiming one key at once: exactly one proceeds, the other is told it is in progress', async () => {
  const log = new SharedLog();
  let now = 10_000;
  const a = new IdempotencyStore(log.view(), { ttlMs: 86_400_000, leaseMs: 5000, now: () => now });
  const b = new IdempotencyStore(log.view(), { ttlMs: 86_400_000, leaseMs: 5000, now: () => now });
  const [ra, rb] = await Promise.all([a.acquire('t', 'k', 'fp', fresh('m-a')), b.acquire('t', 'k', 'fp', fresh('m-b'))]);
  assert.deepEqual([ra.kind, rb.kind].sort(), ['in-progress', 'proceed']);
  const winner = ra.kind === 'proceed' ? ra : rb.kind === 'proceed' ? rb : assert.fail('no winner');
  assert.equal(winner.claim.messageId, 'm-a', 'the first claim in the log wins');

  await (ra.kind === 'proceed' ? a : b).markAccepted('t', 'k', winner.claim);
  now += 1000;
  assert.deepEqual(await b.acquire('t', 'k', 'fp', fresh('m-c')), { kind: 'replay', messageId: 'm-a' });
  assert.deepEqual(await b.acquire('t', 'k', 'other', fresh('m-c')), { kind: 'conflict' });
  assert.equal((await b.acquire('other-tenant', 'k', 'fp', fresh('m-d'))).kind, 'proceed', 'keys are per tenant');
});

test('a claim left pending by a dead request is completed with its message id once the lease ran out', async () => {
  const log = new SharedLog();
  let now = 10_000;
  const dead = new IdempotencyStore(log.view(), { ttlMs: 86_400_000, leaseMs: 5000, now: () => now });
  const live = new IdempotencyStore(log.view(), { ttlMs: 86_400_000, leaseMs: 5000, now: () => now });
  const first = await dead.acquire('t', 'k', 'fp', fresh('m-dead'));
  assert.equal(first.kind, 'proceed');
  // The replica dies here: produced nothing, marked nothing.
  assert.deepEqual(await live.acquire('t', 'k', 'fp', fresh('m-new')), { kind: 'in-progress', retryAfterMs: 5000 });
  now += 5000;
  const taken = await live.acquire('t', 'k', 'fp', fresh('m-new'));
  assert.equal(taken.kind, 'proceed');
  assert.equal(taken.kind === 'proceed' && taken.claim.messageId, 'm-dead');
  assert.equal(taken.kind === 'proceed' && taken.completing, true);
});

test('after the ttl the key is free again and gets a new message id', async () => {
  const log = new SharedLog();
  let now = 10_000;
  const s = new IdempotencyStore(log.view(), { ttlMs: 60_000, leaseMs: 5000, now: () => now });
  const r1 = await s.acquire('t', 'k', 'fp', fresh('m1'));
  assert.equal(r1.kind, 'proceed');
  if (r1.kind === 'proceed') await s.markAccepted('t', 'k', r1.claim);
  now += 60_000;
  const r2 = await s.acquire('t', 'k', 'other-body', fresh('m2'));
  assert.equal(r2.kind === 'proceed' && r2.claim.messageId, 'm2');
});
