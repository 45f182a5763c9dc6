import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { EmailEvent } from '../contracts/email-event.js';
import { SuppressionContract } from '../contracts/suppression.js';
import { replaces, suppressionsFor } from './suppression-rules.js';
import { PackedSuppressionMap, SuppressionIndex, packSuppression, unpackSuppression } from './suppression-index.js';
import { packedOf } from './suppression-table.js';

const now = new Date('2026-12-03T12:00:00.000Z');
const opts = { softBounceDays: 7, now };

function ev(type: EmailEvent['type'], more: Partial<EmailEvent> = {}): EmailEvent {
  return { schemaVersion: 1, eventId: 'e1', type, messageId: 'm1', tenant: 'acme', at: now.toISOString(), stage: 'dispatcher', recipients: ['Bob@Example.com'], ...more };
}

const table: Array<[string, EmailEvent, { reason: string; list?: string; expires?: boolean } | undefined]> = [
  ['recipient-class bounce (unknown user)', ev('bounced', { bounceClass: 'recipient', category: 'unknown-user' }), { reason: 'hard-bounce' }],
  ['recipient-class bounce, asynchronous DSN', ev('bounced', { bounceClass: 'recipient', category: 'mailbox-disabled', via: 'dsn' }), { reason: 'hard-bounce' }],
  ['mailbox full: a soft bounce that expires', ev('bounced', { bounceClass: 'recipient', category: 'mailbox-full' }), { reason: 'soft-bounce', expires: true }],
  ['infrastructure bounce (blocklisted ip)', ev('bounced', { bounceClass: 'infrastructure', category: 'blocklisted-ip' }), undefined],
  ['content bounce (spam)', ev('bounced', { bounceClass: 'content', category: 'spam' }), undefined],
  ['bounce without a class', ev('bounced', { category: 'other' }), undefined],
  ['expired is never a bounce', ev('expired', { reason: 'max age' }), undefined],
  ['deferred', ev('deferred', { bounceClass: 'recipient', category: 'mailbox-full' }), undefined],
  ['failed', ev('failed'), undefined],
  ['sent', ev('sent'), undefined],
  ['suppressed (no loop)', ev('suppressed', { category: 'hard-bounce' }), undefined],
  ['complaint', ev('complained', { category: 'abuse', via: 'arf' }), { reason: 'complaint' }],
  ['complaint naming a list is still tenant-wide', ev('complained', { category: 'abuse', listId: 'news' }), { reason: 'complaint' }],
  ['unsubscribe from a list', ev('unsubscribed', { via: 'one-click', listId: 'news' }), { reason: 'unsubscribe', list: 'news' }],
  ['unsubscribe without a list: tenant-wide', ev('unsubscribed', { via: 'mailto' }), { reason: 'unsubscribe' }],
];

for (const [name, event, want] of table) {
  test(`suppressionsFor: ${name}`, () => {
    const got = suppressionsFor(event, opts);
    if (!want) return assert.deepEqual(got, []);
    assert.equal(got.length, 1);
    const s = got[0];
    SuppressionContract.encode(s); // a valid record
    assert.equal(s.address, 'bob@example.com');
    assert.equal(s.tenant, 'acme');
    assert.equal(s.reason, want.reason);
    assert.equal(s.list, want.list);
    assert.deepEqual(s.cause, { eventId: 'e1', messageId: 'm1', type: event.type, ...(event.via ? { via: event.via } : {}) });
    if (want.expires) assert.equal(s.expiresAt, '2026-12-10T12:00:00.000Z');
    else assert.equal(s.expiresAt, undefined);
  });
}

test('suppressionsFor: one record per distinct valid recipient', () => {
  const got = suppressionsFor(ev('complained', { recipients: ['a@x.example', 'A@X.example', 'not-an-address', 'b@x.example'] }), opts);
  assert.deepEqual(got.map((s) => s.address), ['a@x.example', 'b@x.example']);
});

test('replaces: a stronger or fresher entry wins, a weaker one never', () => {
  const t = now.getTime();
  assert.equal(replaces(undefined, { reason: 'soft-bounce', expiresAtMs: t + 1 }, t), true);
  assert.equal(replaces({ reason: 'complaint' }, { reason: 'unsubscribe' }, t), false);
  assert.equal(replaces({ reason: 'hard-bounce' }, { reason: 'soft-bounce', expiresAtMs: t + 1000 }, t), false);
  assert.equal(replaces({ reason: 'unsubscribe' }, { reason: 'complaint' }, t), true);
  assert.equal(replaces({ reason: 'soft-bounce', expiresAtMs: t + 10 }, { reason: 'hard-bounce' }, t), true);
  assert.equal(replaces({ reason: 'soft-bounce', expiresAtMs: t + 10 }, { reason: 'soft-bounce', expiresAtMs: t + 20 }, t), true);
  assert.equal(replaces({ reason: 'hard-bounce' }, { reason: 'hard-bounce' }, t), false);
  // An expired entry is as good as none.
  assert.equal(replaces({ reason: 'complaint', expiresAtMs: t - 1 }, { reason: 'unsubscribe' }, t), true);
});

test('index: tenant-wide and list entries, expiry, tenants apart', () => {
  const t = now.getTime();
  const map = new PackedSuppressionMap();
  map.set('acme\u0000\u0000bob@example.com', packSuppression('hard-bounce'));
  map.set('acme\u0000news\u0000carol@example.com', packSuppression('unsubscribe'));
  map.set('acme\u0000\u0000dave@example.com', packSuppression('soft-bounce', t + 60_000));
  map.set('acme\u0000\u0000gone@example.com', packSuppression('manual'));
  map.delete('acme\u0000\u0000gone@example.com');
  map.delete('acme\u0000\u0000never@example.com');
  assert.equal(map.size, 3);
  const index = new SuppressionIndex(map);
  assert.deepEqual(index.isSuppressed('acme', 'BOB@example.com', undefined, t), { reason: 'hard-bounce' });
  assert.deepEqual(index.isSuppressed('acme', 'bob@example.com', 'news', t), { reason: 'hard-bounce' });
  assert.equal(index.isSuppressed('acme/eu', 'bob@example.com', undefined, t), undefined);
  assert.equal(index.isSuppressed('acme', 'carol@example.com', undefined, t), undefined);
  assert.equal(index.isSuppressed('acme', 'carol@example.com', 'promo', t), undefined);
  assert.deepEqual(index.isSuppressed('acme', 'carol@example.com', 'news', t), { reason: 'unsubscribe', list: 'news' });
  assert.deepEqual(index.isSuppressed('acme', 'dave@example.com', undefined, t), { reason: 'soft-bounce' });
  assert.equal(index.isSuppressed('acme', 'dave@example.com', undefined, t + 61_000), undefined);
});

test('packedOf reads reason and expiry from the record text, the odd record through JSON.parse', () => {
  const expiresAt = '2026-12-10T12:00:00.000Z';
  const rec = (more: Record<string, unknown>) => SuppressionContract.encode({ schemaVersion: 1, tenant: 'acme', address: 'a@example.org', reason: 'soft-bounce', createdAt: now.toISOString(), ...more } as never);
  assert.deepEqual(unpackSuppression(packedOf(rec({ expiresAt }))), { reason: 'soft-bounce', expiresAtMs: Date.parse(expiresAt) });
  assert.deepEqual(unpackSuppression(packedOf(rec({ reason: 'complaint' }))), { reason: 'complaint' });
  // A note that looks like a field does not fool it.
  assert.deepEqual(unpackSuppression(packedOf(rec({ reason: 'manual', note: 'was "reason":"complaint" before' }))), { reason: 'manual' });
  assert.deepEqual(unpackSuppression(packedOf(Buffer.from('{ "reason" : "hard-bounce" }'))), { reason: 'hard-bounce' });
  assert.throws(() => packedOf(Buffer.from('{"reason":"nope"}')), TypeError);
});
