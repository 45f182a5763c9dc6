import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FeedbackKeyring, recipientHash, returnPathOf, tokenOfLocalPart, RETURN_PATH_PREFIX, type RefInput } from './feedback-token.js';

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

test('the token format is fixed: tokens already sent keep verifying, and new ones are byte-equal to the old', () => {
  const keyring = new FeedbackKeyring([{ id: 3, secret: 'k'.repeat(32) }]);
  const cases: Array<[RefInput, string | undefined, string]> = [
    [{ purpose: 'return-path', messageId: '0b8e0f9e-5f43-4a7b-9d0b-2b8e3c1f7a11', tenant: 'acme', recipient: 'Ann@Example.org' }, undefined, 'ip7qxdqptzpugst3tufsxdr4d55bcbdbmnwwkq4mjr5jtskfilfma3cm'],
    [{ purpose: 'unsubscribe', messageId: 'custom-id-Ä', tenant: 'acme/eu', recipient: 'ann@example.org', fromDomain: 'ex.com', listId: 'news' }, undefined, 'kmggg5ltorxw2lljmqw4hbahmfrw2zjpmv2q6ylonzagk6dbnvygyzjon5zgobtfpaxgg33narxgk53t242rhr47mec2k'],
    [{ purpose: 'ref', messageId: '0b8e0f9e-5f43-4a7b-9d0b-2b8e3c1f7a11', tenant: 'é', recipient: 'x@y.z', fromDomain: 'ex.com' }, undefined, 'mp7qxdqptzpugst3tufsxdr4d55bcawdvecxqqdzfz5amzlyfzrw63iaz3vpeozodoalu'],
    [{ purpose: 'track', messageId: '0b8e0f9e-5f43-4a7b-9d0b-2b8e3c1f7a11', tenant: 'acme', recipient: 'x@y.z', track: { kind: 'click', linkIndex: 7, issuedAt: 1765000000 } }, 'https://a.example/x', 'op7qxdqptzpugst3tufsxdr4d55bcbdbmnwwkblyib4s46qbaadwsm6didrqbf7teztry5a'],
  ];
  for (const [ref, bound, token] of cases) {
    assert.equal(keyring.sign(ref, bound), token, ref.purpose);
    const back = keyring.verify(token, ref.purpose, bound);
    assert.equal(back?.tenant, ref.tenant);
    assert.equal(back?.messageId, ref.messageId);
  }
});
