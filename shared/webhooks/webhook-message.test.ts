import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Webhook } from 'standardwebhooks';
import { newWebhookSecret, sign, signedHeaders, signingSecrets, wants, webhookBody } from './webhook-message.js';

test('filters: empty means every email.* type, inbound.received only when named, disabled wants nothing', () => {
  assert.equal(wants({ eventTypes: [], enabled: true }, 'email.sent'), true);
  assert.equal(wants({ eventTypes: [], enabled: true }, 'inbound.received'), false);
  assert.equal(wants({ eventTypes: ['inbound.received'], enabled: true }, 'inbound.received'), true);
  assert.equal(wants({ eventTypes: ['email.bounced'], enabled: true }, 'email.sent'), false);
  assert.equal(wants({ eventTypes: [], enabled: false }, 'email.sent'), false);
});

test('signatures verify with the standardwebhooks package, both secrets during a rotation, the expired one no more', () => {
  const old = { secret: newWebhookSecret(), createdAt: '2026-01-01T00:00:00Z', expiresAt: new Date(Date.now() + 60_000).toISOString() };
  const fresh = { secret: newWebhookSecret(), createdAt: '2026-01-02T00:00:00Z' };
  const now = new Date();
  const body = webhookBody('email.sent', now, { messageId: 'm1' });
  const active = signingSecrets([fresh, old], Date.now());
  assert.equal(active.length, 2);
  const headers = signedHeaders(active, 'evt_1', now, body);
  assert.equal(headers['webhook-signature'].split(' ').length, 2);
  assert.deepEqual(new Webhook(old.secret).verify(body, headers), JSON.parse(body));
  assert.deepEqual(new Webhook(fresh.secret).verify(body, headers), JSON.parse(body));
  assert.throws(() => new Webhook(newWebhookSecret()).verify(body, headers));
  assert.throws(() => new Webhook(fresh.secret).verify(body.replace('m1', 'm2'), headers));
  assert.deepEqual(signingSecrets([fresh, old], Date.now() + 120_000), [fresh]);
});

test('the native signature is byte for byte the standardwebhooks package\'s', () => {
  for (let i = 0; i < 50; i++) {
    const secret = newWebhookSecret();
    const at = new Date(Date.now() - i * 1000);
    const body = webhookBody('email.sent', at, { i, text: 'é ✓ \u2028'.repeat(i) });
    assert.equal(sign(secret, `evt_${i}`, Math.floor(at.getTime() / 1000), body), new Webhook(secret).sign(`evt_${i}`, at, body));
  }
});
