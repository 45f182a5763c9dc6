import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FeedbackKeyring, recipientHash, returnPathOf, tokenOfLocalPart, RETURN_PATH_PREFIX } from './feedback-token.js';

const k1 = { id: 1, secret: 'one-'.repeat(10) };
const k2 = { id: 2, secret: 'two-'.repeat(10) };
const id = '0193a4f2-7c1e-7d2a-9b3c-4d5e6f708192';

test('an unsubscribe token round-trips every field and is lower-case base32', () => {
  const ring = new FeedbackKeyring([k1]);
  const token = ring.sign({ purpose: 'unsubscribe', messageId: id, tenant: 'acme/eu', recipient: 'Jane@Example.com', fromDomain: 'acme.com', listId: 'news' });
  assert.match(token, /^[a-z2-7]+$/);
  assert.deepEqual(ring.verify(token), {
    purpose: 'unsubscribe', messageId: id, tenant: 'acme/eu', recipient: 'jane@example.com', recipientHash: recipientHash('jane@example.com'), fromDomain: 'acme.com', listId: 'news',
  });
  // Case folding by an MTA does no harm.
  assert.equal(ring.verify(token.toUpperCase())?.tenant, 'acme/eu');
});

test('non-UUID message ids are carried as text', () => {
  const ring = new FeedbackKeyring([k1]);
  const token = ring.sign({ purpose: 'ref', messageId: 'order-42/confirm', tenant: 'acme', recipient: 'a@b.c' });
  assert.equal(ring.verify(token)?.messageId, 'order-42/confirm');
});

test('a return path fits SMTP\'s 64-octet local part for a short tenant and carries only the recipient hash', () => {
  const ring = new FeedbackKeyring([k1]);
  const rp = returnPathOf(ring, 'bounces.example.com', { messageId: id, tenant: 'acme', recipient: 'someone.with.a.long.name@example.org' });
  const local = rp.split('@')[0];
  assert.ok(local.length <= 64, `${local.length} octets`);
  const ref = ring.verify(tokenOfLocalPart(local, RETURN_PATH_PREFIX)!, 'return-path');
  assert.equal(ref?.messageId, id);
  assert.equal(ref?.recipient, '');
  assert.equal(ref?.recipientHash, recipientHash('Someone.With.A.Long.Name@example.org'));
});

test('tampering, a wrong purpose, an unknown key and garbage are refused without throwing', () => {
  const ring = new FeedbackKeyring([k1]);
  const token = ring.sign({ purpose: 'unsubscribe', messageId: id, tenant: 'acme', recipient: 'a@b.c' });
  const flipped = token.slice(0, 10) + (token[10] === 'a' ? 'b' : 'a') + token.slice(11);
  assert.equal(ring.verify(flipped), undefined);
  assert.equal(ring.verify(token, 'return-path'), undefined);
  assert.equal(new FeedbackKeyring([k2]).verify(token), undefined);
  for (const junk of ['', 'a', '!!!!', '1111', 'a'.repeat(5000), token.slice(0, -3)]) assert.equal(ring.verify(junk), undefined);
});

test('rotation: the first key signs, every key verifies', () => {
  const old = new FeedbackKeyring([k1]);
  const rotated = new FeedbackKeyring([k2, k1]);
  const before = old.sign({ purpose: 'ref', messageId: id, tenant: 'acme', recipient: 'a@b.c' });
  assert.equal(rotated.verify(before)?.tenant, 'acme');
  const after = rotated.sign({ purpose: 'ref', messageId: id, tenant: 'acme', recipient: 'a@b.c' });
  assert.equal(old.verify(after), undefined);
  assert.equal(new FeedbackKeyring([k2]).verify(after)?.tenant, 'acme');
});

test('tenants that are prefixes of each other get different tokens that verify to their own tenant', () => {
  const ring = new FeedbackKeyring([k1]);
  const a = ring.sign({ purpose: 'unsubscribe', messageId: id, tenant: 'acme', recipient: 'a@b.c' });
  const b = ring.sign({ purpose: 'unsubscribe', messageId: id, tenant: 'acme/eu', recipient: 'a@b.c' });
  assert.notEqual(a, b);
  assert.equal(ring.verify(a)?.tenant, 'acme');
  assert.equal(ring.verify(b)?.tenant, 'acme/eu');
});

test('local parts: prefix and +detail handled, anything else refused', () => {
  assert.equal(tokenOfLocalPart('B-ABC234+x', 'b-'), 'abc234');
  assert.equal(tokenOfLocalPart('postmaster', 'b-'), undefined);
  assert.equal(tokenOfLocalPart('b-abc!', 'b-'), undefined);
});

test('a disabled keyring signs nothing', () => {
  const ring = new FeedbackKeyring([]);
  assert.equal(ring.enabled, false);
  assert.throws(() => ring.sign({ purpose: 'ref', messageId: id, tenant: 'acme', recipient: 'a@b.c' }), /no feedback key/);
});
