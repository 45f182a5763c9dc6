import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FeedbackKeyring } from '../feedback/feedback-token.js';
import { clickUrl, pixelUrl, verifyClick, verifyOpen, type TrackedCopy } from './tracking-links.js';

const OLD = { id: 1, secret: 'old-tracking-secret-0123456789abcdefghij' };
const NEW = { id: 2, secret: 'new-tracking-secret-0123456789abcdefghij' };
const keyring = new FeedbackKeyring([OLD]);
const BASE = 'https://t.example.com';
const copy = (tenant = 'acme'): TrackedCopy => ({ messageId: '0b9f5a7e-4c1d-4a57-9d55-3b7a1e2f6c88', tenant, recipient: 'Jane@Example.org', issuedAt: 1_780_000_000 });
const URL_ = 'https://shop.example/orders/42?ref=mail&x=%C3%A9';

/** The token and the `u` query value of a click URL, as the tracker sees them. */
function parts(url: string): { token: string; u: string } {
  const parsed = new URL(url);
  return { token: parsed.pathname.split('/')[2], u: parsed.searchParams.get('u')! };
}

describe('tracking links', () => {
  test('a click URL verifies for its own URL: messageId, tenant, recipient (lower-cased), link index, issuedAt', () => {
    const url = clickUrl(keyring, BASE, copy(), 3, URL_);
    assert.ok(url.startsWith(`${BASE}/c/`));
    const { token, u } = parts(url);
    assert.equal(u, URL_);
    assert.deepEqual(verifyClick(keyring, token, u), { messageId: copy().messageId, tenant: 'acme', recipient: 'jane@example.org', kind: 'click', linkIndex: 3, issuedAt: 1_780_000_000, url: URL_ });
  });

  test('one character of the URL changed, or the token moved to another URL: no click (never an open redirect)', () => {
    const { token } = parts(clickUrl(keyring, BASE, copy(), 0, URL_));
    for (const other of [URL_.replace('42', '43'), URL_.replace('shop', 'shoq'), `${URL_}x`, 'https://evil.example/', URL_.replace('https', 'http')]) {
      assert.equal(verifyClick(keyring, token, other), undefined, other);
    }
    assert.equal(verifyClick(keyring, token, undefined), undefined);
  });

  test('a tampered, truncated, unsigned or foreign-key token is refused', () => {
    const { token, u } = parts(clickUrl(keyring, BASE, copy(), 0, URL_));
    const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'a' ? 'b' : 'a') + s.slice(i + 1);
    for (let i = 0; i < token.length; i += 7) assert.equal(verifyClick(keyring, flip(token, i), u), undefined, `char ${i}`);
    assert.equal(verifyClick(keyring, token.slice(0, -2), u), undefined);
    assert.equal(verifyClick(keyring, '', u), undefined);
    assert.equal(verifyClick(keyring, 'not-a-token!', u), undefined);
    assert.equal(verifyClick(new FeedbackKeyring([{ id: 1, secret: 'another-secret-with-the-same-key-id-0123' }]), token, u), undefined);
  });

  test('rotation: the new key signs, a link signed with the old key still verifies while it is listed', () => {
    const old = parts(clickUrl(keyring, BASE, copy(), 1, URL_));
    const rotated = new FeedbackKeyring([NEW, OLD]);
    assert.equal(verifyClick(rotated, old.token, old.u)?.linkIndex, 1);
    const fresh = parts(clickUrl(rotated, BASE, copy(), 1, URL_));
    assert.equal(verifyClick(keyring, fresh.token, fresh.u), undefined, 'signed by the new key, unknown to the old ring');
    assert.equal(verifyClick(new FeedbackKeyring([NEW]), old.token, old.u), undefined, 'the old key dropped');
  });

  test('an open token is not a click and a click token not an open; other purposes are neither', () => {
    const pixel = pixelUrl(keyring, BASE, copy());
    assert.match(pixel, /^https:\/\/t\.example\.com\/o\/[a-z2-7]+\.gif$/);
    const openToken = pixel.slice(`${BASE}/o/`.length, -4);
    assert.equal(verifyOpen(keyring, openToken)?.kind, 'open');
    assert.equal(verifyClick(keyring, openToken, URL_), undefined);
    const { token } = parts(clickUrl(keyring, BASE, copy(), 0, URL_));
    assert.equal(verifyOpen(keyring, token), undefined);
    const ref = keyring.sign({ purpose: 'ref', messageId: 'm', tenant: 'acme', recipient: 'a@b.c' });
    assert.equal(verifyOpen(keyring, ref), undefined);
    assert.equal(keyring.verify(openToken, 'ref'), undefined, 'a tracking token is no ref');
  });

  test('tenants acme and acme/eu stay apart', () => {
    assert.equal(verifyOpen(keyring, pixelUrl(keyring, BASE, copy('acme/eu')).slice(`${BASE}/o/`.length, -4))?.tenant, 'acme/eu');
    assert.equal(verifyOpen(keyring, pixelUrl(keyring, BASE, copy('acme')).slice(`${BASE}/o/`.length, -4))?.tenant, 'acme');
  });

  test('only http(s) URLs are ever accepted', () => {
    for (const bad of ['javascript:alert(1)', 'data:text/html,x', '//evil.example', 'mailto:a@b.c']) {
      const token = keyring.sign({ purpose: 'track', messageId: 'm', tenant: 'acme', recipient: 'a@b.c', track: { kind: 'click', linkIndex: 0, issuedAt: 0 } }, bad);
      assert.equal(verifyClick(keyring, token, bad), undefined, bad);
    }
  });
});
