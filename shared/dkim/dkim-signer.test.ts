/**
 * Signatures checked by an independent verifier: mailauth's `dkimVerify` (not the signing
 * code path) against a resolver serving the TXT record `postline dkim keygen` prints.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { dkimSign } from './dkim-signer.js';
import { dkimRecordValue } from './dkim-record.js';
import type { DkimKeyType } from './dkim-keys.js';

const MESSAGE = [
  'From: Shop <news@mail.example.com>',
  'To: ann@example.org',
  'Subject: Offers',
  'Date: Tue, 01 Dec 2026 12:00:00 +0000',
  'Message-ID: <m1@mail.example.com>',
  'List-Unsubscribe: <https://example.com/u/1>',
  'List-Unsubscribe-Post: List-Unsubscribe=One-Click',
  'MIME-Version: 1.0',
  'Content-Type: text/plain; charset=utf-8',
  '',
  'Hello  Ann,\t',
  'this is the body.',
  '',
].join('\r\n');

function keyOf(type: DkimKeyType) {
  const { privateKey } = type === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ed25519');
  return { domain: 'example.com', selector: 's1', type, privateKey };
}

async function verify(raw: Buffer, record: string) {
  const resolver = async (name: string, rr: string): Promise<string[][]> => {
    if (name === 's1._domainkey.example.com' && rr === 'TXT') return [[record]];
    throw Object.assign(new Error(`no ${rr} for ${name}`), { code: 'ENOTFOUND' });
  };
  const { results } = await dkimVerify(raw, { resolver });
  return results;
}

for (const type of ['rsa', 'ed25519'] as const) {
  test(`dkimSign ${type}: verifies; List-Unsubscribe(-Post) and From are signed and over-signed; deterministic for one sign time`, async () => {
    const key = keyOf(type);
    const at = new Date('2026-12-01T12:00:00Z');
    const signed = await dkimSign(Buffer.from(MESSAGE), key, at);
    assert.equal(signed.algorithm, type === 'rsa' ? 'rsa-sha256' : 'ed25519-sha256');
    const results = await verify(signed.raw, dkimRecordValue(key.privateKey, type));
    assert.equal(results.length, 1);
    assert.equal(results[0].status.result, 'pass', JSON.stringify(results[0].status));
    assert.equal(results[0].signingDomain, 'example.com');
    const header = signed.raw.toString().split('\r\n\r\n')[0].replace(/\r\n\s+/g, ' ');
    const h = /\bh=([^;]+);/.exec(header)![1].split(':').map((s) => s.trim().toLowerCase());
    for (const name of ['from', 'to', 'subject', 'date', 'message-id', 'list-unsubscribe', 'list-unsubscribe-post', 'mime-version', 'content-type']) {
      assert.ok(h.includes(name), `${name} signed (h=${h.join(':')})`);
    }
    assert.equal(h.filter((n) => n === 'from').length, 2, 'From over-signed');
    assert.match(header, /\bt=1796126400;/);
    assert.match(header, /\bc=relaxed\/relaxed;/);
    assert.deepEqual((await dkimSign(Buffer.from(MESSAGE), key, at)).raw, signed.raw, 'same bytes when signed again');
  });

  test(`dkimSign ${type}: a tampered body, a changed subject or an added From header fails verification`, async () => {
    const key = keyOf(type);
    const signed = (await dkimSign(Buffer.from(MESSAGE), key, new Date())).raw.toString();
    const record = dkimRecordValue(key.privateKey, type);
    const body = await verify(Buffer.from(signed.replace('this is the body', 'this is the b0dy')), record);
    assert.notEqual(body[0].status.result, 'pass');
    assert.match(body[0].status.comment ?? '', /body hash did not verify/);
    const subject = await verify(Buffer.from(signed.replace('Subject: Offers', 'Subject: Free money')), record);
    assert.equal(subject[0].status.result, 'fail');
    const [head, ...rest] = signed.split('\r\n\r\n');
    const forged = await verify(Buffer.from(`${head}\r\nFrom: ceo@example.com\r\n\r\n${rest.join('\r\n\r\n')}`), record);
    assert.equal(forged[0].status.result, 'fail', 'a second From breaks the over-signed signature');
    // The same message with the key of another selector's record: fail, not pass.
    const other = keyOf(type);
    assert.equal((await verify(Buffer.from(signed), dkimRecordValue(other.privateKey, type)))[0].status.result, 'fail');
  });
}
