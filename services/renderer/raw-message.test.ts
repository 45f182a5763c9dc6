import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prepareRawMessage, RawMessageRejected } from './raw-message.js';

const ids = { messageId: 'm-1', acceptedAt: '2026-12-03T18:40:00.000Z' };
const prep = (raw: string | Buffer) => prepareRawMessage(Buffer.isBuffer(raw) ? raw : Buffer.from(raw), ids);
const head = (raw: Buffer) => raw.toString('utf8').split('\r\n\r\n')[0];

test('control headers read and stripped, Bcc and Return-Path removed, Message-ID and Date added; the body untouched', () => {
  const raw = [
    'Return-Path: <x@elsewhere.test>',
    'From: "Shop" <News@Shop.Example>',
    'To: a@example.org',
    'Bcc: hidden@example.org,',
    ' other@example.org',
    'X-Postline-Priority: Bulk',
    'X-Postline-Tags: a, b',
    'X-Postline-List-Id: weekly',
    'X-Postline-Idempotency-Key: k1',
    'X-Postline-Ref: forged',
    'Subject: hi',
    '',
    'Bcc: this is body text',
    '',
  ].join('\r\n');
  const out = prep(raw);
  assert.equal(out.from, 'News@shop.example');
  assert.equal(out.fromDomain, 'shop.example');
  assert.deepEqual(out.control, { priority: 'bulk', tags: 'a, b', listId: 'weekly', idempotencyKey: 'k1' });
  const h = head(out.message);
  assert.doesNotMatch(h, /^(bcc|x-postline-|return-path|\s+other@)/im);
  assert.match(h, /^Message-ID: <m-1@shop\.example>$/m);
  assert.match(h, /^Date: Thu, 03 Dec 2026 18:40:00 \+0000$/m);
  assert.ok(out.message.toString().endsWith('\r\n\r\nBcc: this is body text\r\n'), 'the body is the client\'s');
  assert.equal(out.ownListUnsubscribe, false);
});

test('preparing twice changes nothing; a message needing nothing comes back byte for byte', () => {
  const once = prep('From: a@shop.example\r\nBcc: b@example.org\r\nSubject: s\r\n\r\nbody\r\n').message;
  assert.deepEqual(prep(once).message, once);
  const clean = 'From: a@shop.example\r\nDate: Thu, 03 Dec 2026 18:40:00 +0000\r\nMessage-ID: <x@shop.example>\r\nList-Unsubscribe: <mailto:u@shop.example>\r\n\r\nbody\r\n';
  assert.equal(prep(clean).message.toString(), clean);
  assert.equal(prep(clean).ownListUnsubscribe, true);
});

test('UTF-8 8-bit content passes; anything else is refused with its SMTP reply', () => {
  assert.equal(prep('From: a@shop.example\r\nSubject: Grüße\r\n\r\nGrüße\r\n').from, 'a@shop.example');
  const cases: Array<[string, string | Buffer, string]> = [
    ['empty', '', 'RAW_EMPTY'],
    ['no From', 'To: a@example.org\r\n\r\nbody', 'RAW_NO_FROM'],
    ['two From headers', 'From: a@shop.example\r\nFrom: b@shop.example\r\n\r\nbody', 'RAW_FROM_INVALID'],
    ['two addresses', 'From: a@shop.example, b@shop.example\r\n\r\nbody', 'RAW_FROM_INVALID'],
    ['not an address', 'From: nobody\r\n\r\nbody', 'RAW_FROM_INVALID'],
    ['latin-1 body', Buffer.concat([Buffer.from('From: a@shop.example\r\n\r\nGr'), Buffer.from([0xfc]), Buffer.from('\r\n')]), 'RAW_NOT_UTF8'],
    ['latin-1 header', Buffer.concat([Buffer.from('From: a@shop.example\r\nSubject: Gr'), Buffer.from([0xfc]), Buffer.from('\r\n\r\nbody')]), 'RAW_NOT_UTF8'],
  ];
  for (const [name, raw, code] of cases) {
    assert.throws(() => prep(raw), (err: unknown) => err instanceof RawMessageRejected && err.code === code && err.smtp.code === 554, name);
  }
});

test('a message without a body, or with bare LF line ends, is read', () => {
  assert.match(prep('From: a@shop.example\r\nSubject: s').message.toString(), /^From: a@shop\.example\r\nSubject: s\r\nMessage-ID: <m-1@shop\.example>\r\nDate: .*\r\n\r\n$/);
  const lf = prep('From: a@shop.example\nBcc: x@example.org\n\nline1\nline2\n').message.toString();
  assert.doesNotMatch(lf, /Bcc/);
  assert.ok(lf.endsWith('\r\n\r\nline1\nline2\n'));
});
