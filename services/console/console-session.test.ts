/**
 * Console sessions: the idle and absolute limits (pure), the shape check of a decoded cookie,
 * and the sealing keys derived from the feedback secrets — the same on every replica, distinct
 * per secret, never the secret itself; random (and per process) without one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { feedbackSecrets, isConsoleSession, sessionKeysFrom, sessionStatus } from './console-session.js';

const limits = { idleTimeoutMs: 30 * 60_000, absoluteTimeoutMs: 12 * 3_600_000 };

test('a session is live until idle too long or too old, whichever comes first', () => {
  const t = 1_000_000_000_000;
  assert.equal(sessionStatus({ createdAt: t, seenAt: t }, t + 29 * 60_000, limits), 'live');
  assert.equal(sessionStatus({ createdAt: t, seenAt: t }, t + 30 * 60_000, limits), 'idle');
  assert.equal(sessionStatus({ createdAt: t, seenAt: t + 12 * 3_600_000 - 60_000 }, t + 12 * 3_600_000 - 1, limits), 'live');
  assert.equal(sessionStatus({ createdAt: t, seenAt: t + 12 * 3_600_000 - 60_000 }, t + 12 * 3_600_000, limits), 'expired');
  assert.equal(sessionStatus({ createdAt: NaN, seenAt: t }, t, limits), 'expired', 'a broken time never counts as live');
});

test('only a value with the session\'s shape is a session', () => {
  assert.ok(isConsoleSession({ key: 'k', createdAt: 1, seenAt: 1 }));
  assert.ok(isConsoleSession({ key: 'k', createdAt: 1, seenAt: 1, tenant: 'acme/eu' }));
  for (const v of [undefined, null, {}, { key: 1, createdAt: 1, seenAt: 1 }, { key: 'k', createdAt: '1', seenAt: 1 }, { key: 'k', createdAt: 1, seenAt: 1, tenant: 3 }]) assert.ok(!isConsoleSession(v));
});

test('sealing keys: derived from each feedback secret, stable, 32 bytes, never the secret; random without secrets', () => {
  const a = 'a'.repeat(40);
  const b = 'b'.repeat(40);
  const one = sessionKeysFrom([a, b]);
  const two = sessionKeysFrom([a, b]);
  assert.equal(one.random, false);
  assert.deepEqual(one.keys.map((k) => k.toString('hex')), two.keys.map((k) => k.toString('hex')), 'every replica derives the same keys');
  assert.equal(one.keys.length, 2);
  assert.ok(one.keys.every((k) => k.length === 32));
  assert.notEqual(one.keys[0].toString('hex'), one.keys[1].toString('hex'));
  assert.ok(!one.keys[0].toString('latin1').includes('aaaa'));
  const r1 = sessionKeysFrom([]);
  const r2 = sessionKeysFrom([]);
  assert.ok(r1.random);
  assert.notEqual(r1.keys[0].toString('hex'), r2.keys[0].toString('hex'));
  assert.deepEqual(feedbackSecrets({ keys: [{ id: 1, secret: a }], keysFile: 'f.json', returnPathDomain: '', unsubscribeUrl: '' }, () => JSON.stringify([{ id: 2, secret: b }])), [a, b]);
});
