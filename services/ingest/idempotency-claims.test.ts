import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideClaim, mergeClaims, requestFingerprint, type IdempotencyClaim } from './idempotency-claims.js';
import type { EmailRequested } from '../../shared/contracts/email-requested.js';

const claim = (over: Partial<IdempotencyClaim> = {}): IdempotencyClaim => ({
  messageId: 'm1',
  owner: 'o1',
  state: 'pending',
  fingerprint: 'f1',
  acceptedAt: '2025-01-01T00:00:00.000Z',
  claimedAt: 1000,
  leaseUntil: 2000,
  expiresAt: 100_000,
  ...over,
});

test('mergeClaims: first writer wins, accepted is final, leases and expiry are read from the records', () => {
  const cases: Array<[string, IdempotencyClaim | undefined, IdempotencyClaim, IdempotencyClaim | 'prev' | 'next']> = [
    ['nothing before', undefined, claim(), 'next'],
    ['a later claim for another message loses', claim(), claim({ messageId: 'm2', owner: 'o2', claimedAt: 1001 }), 'prev'],
    ['it loses to an accepted claim too', claim({ state: 'accepted' }), claim({ messageId: 'm2', owner: 'o2', claimedAt: 5000 }), 'prev'],
    ['once the earlier claim expired the later one wins', claim({ state: 'accepted' }), claim({ messageId: 'm2', owner: 'o2', claimedAt: 100_000 }), 'next'],
    ['the owner marks its claim accepted', claim(), claim({ state: 'accepted' }), 'next'],
    ['anyone may mark the same message accepted', claim({ owner: 'o2' }), claim({ state: 'accepted' }), 'next'],
    ['a stale pending copy cannot undo accepted', claim({ state: 'accepted' }), claim({ claimedAt: 3000 }), 'prev'],
    ['a take-over within the lease loses', claim(), claim({ owner: 'o2', claimedAt: 1999 }), 'prev'],
    ['a take-over after the lease wins', claim(), claim({ owner: 'o2', claimedAt: 2000, leaseUntil: 3000 }), 'next'],
    ['the owner renews its own lease', claim(), claim({ claimedAt: 1500, leaseUntil: 2500 }), 'next'],
  ];
  for (const [name, prev, next, expected] of cases) {
    const want = expected === 'prev' ? prev : expected === 'next' ? next : expected;
    assert.deepEqual(mergeClaims(prev, next), want, name);
  }
});

test('decideClaim: what a request does with the claim it finds', () => {
  const cases: Array<[string, IdempotencyClaim | undefined, string, number, ReturnType<typeof decideClaim>]> = [
    ['no claim', undefined, 'f1', 1500, { kind: 'claim' }],
    ['expired claim', claim({ state: 'accepted' }), 'f1', 100_000, { kind: 'claim' }],
    ['accepted, same request', claim({ state: 'accepted' }), 'f1', 1500, { kind: 'replay', messageId: 'm1' }],
    ['accepted, other request', claim({ state: 'accepted' }), 'f2', 1500, { kind: 'conflict' }],
    ['pending, other request', claim(), 'f2', 1500, { kind: 'conflict' }],
    ['pending within its lease', claim(), 'f1', 1500, { kind: 'in-progress', retryAfterMs: 500 }],
    ['pending past its lease', claim(), 'f1', 2000, { kind: 'complete', claim: claim() }],
  ];
  for (const [name, existing, fp, now, expected] of cases) assert.deepEqual(decideClaim(existing, fp, now), expected, name);
});

test('requestFingerprint ignores the per-request id, time and key, and key order', () => {
  const a = {
    schemaVersion: 1,
    messageId: 'm1',
    tenant: 't',
    acceptedAt: '2025-01-01T00:00:00.000Z',
    priority: 'bulk',
    from: { email: 'a@example.com' },
    to: [{ email: 'b@example.com' }],
    metadata: { x: '1', y: '2' },
    idempotencyKey: 'k1',
  } as EmailRequested;
  const b = { ...a, messageId: 'm2', acceptedAt: '2025-02-01T00:00:00.000Z', idempotencyKey: 'k2', metadata: { y: '2', x: '1' } };
  assert.equal(requestFingerprint(a), requestFingerprint(b));
  assert.notEqual(requestFingerprint(a), requestFingerprint({ ...a, priority: 'critical' }));
});
