import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { EventWebhook } from '@sendgrid/eventwebhook';
import { SendgridRequestRejected, SendgridVerifier } from './sendgrid-verifier.js';

const key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const base64Der = key.publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
const NOW = 1_796_300_000_000;
const ts = String(NOW / 1000);

test('agrees with SendGrid\'s own @sendgrid/eventwebhook on signed, tampered and foreign requests', () => {
  const official = new EventWebhook();
  const officialKey = official.convertPublicKeyToECDSA(`-----BEGIN PUBLIC KEY-----\n${base64Der}\n-----END PUBLIC KEY-----`);
  const ours = new SendgridVerifier(base64Der, 300, () => NOW);
  const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const body = Buffer.from(JSON.stringify([{ event: 'bounce', email: 'a@example.com' }]));
  const cases: Array<[string, Buffer, string]> = [
    ['signed', body, sign('sha256', Buffer.concat([Buffer.from(ts), body]), key.privateKey).toString('base64')],
    ['tampered body', Buffer.from(body.toString().replace('bounce', 'open')), sign('sha256', Buffer.concat([Buffer.from(ts), body]), key.privateKey).toString('base64')],
    ['another key', body, sign('sha256', Buffer.concat([Buffer.from(ts), body]), other.privateKey).toString('base64')],
    ['garbage signature', body, 'bm90IGEgc2lnbmF0dXJl'],
  ];
  for (const [name, payload, signature] of cases) {
    let theirs = false;
    try {
      theirs = official.verifySignature(officialKey, payload, signature, ts);
    } catch {
      theirs = false;
    }
    let mine = true;
    try {
      ours.verify(payload, signature, ts);
    } catch (err) {
      assert.ok(err instanceof SendgridRequestRejected);
      mine = false;
    }
    assert.equal(mine, theirs, name);
    assert.equal(mine, name === 'signed', name);
  }
});

test('refuses stale timestamps before checking, and keys that are not P-256', () => {
  const ours = new SendgridVerifier(base64Der, 300, () => NOW);
  assert.throws(() => ours.verify(Buffer.from('[]'), 'x', String(NOW / 1000 - 301)), (e: unknown) => e instanceof SendgridRequestRejected && e.outcome === 'stale');
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
  assert.throws(() => new SendgridVerifier(rsa, 300), /not an ECDSA P-256/);
});
