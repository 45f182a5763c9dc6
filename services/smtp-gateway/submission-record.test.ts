import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configuredSenderDomains } from '../../shared/sender-domains.js';
import { RawEmailRequestedContract } from '../../shared/contracts/email-requested.js';
import { RawMessageRejected } from '../renderer/raw-message.js';
import { submissionRecord, tagsOf } from './submission-record.js';

const policy = configuredSenderDomains({ acme: ['acme.test'], 'acme/eu': ['eu.acme.test'] });
const sub = (raw: string, tenant = 'acme') => ({ tenant, messageId: 'm-1', acceptedAt: '2026-12-03T18:40:00.000Z', mailFrom: '', rcptTo: ['a@example.org'], raw: Buffer.from(raw) });
const reject = (fn: () => unknown, code: string, smtp: number) => assert.throws(fn, (e: unknown) => e instanceof RawMessageRejected && e.code === code && e.smtp.code === smtp, code);

test('the record: control headers become fields, the message base64, the envelope as given; it passes its contract', () => {
  const { record, value } = submissionRecord(sub('From: a@acme.test\r\nX-Postline-Priority: critical\r\nX-Postline-Tags: x, y,x\r\nX-Postline-List-Id: l1\r\n\r\nhi\r\n'), policy, 1 << 20);
  assert.deepEqual([record.priority, record.tags, record.listId, record.envelope], ['critical', ['x', 'y'], 'l1', { from: '', to: ['a@example.org'] }]);
  assert.doesNotMatch(Buffer.from(record.raw, 'base64').toString(), /X-Postline/);
  assert.deepEqual(RawEmailRequestedContract.decode(value), record);
  assert.equal(submissionRecord(sub('From: a@acme.test\r\n\r\nhi'), policy, 1 << 20).record.priority, 'transactional');
});

test('refusals: sender domain per tenant exactly, bad control headers, a record over the limit', () => {
  reject(() => submissionRecord(sub('From: a@eu.acme.test\r\n\r\nhi'), policy, 1 << 20), 'SENDER_DOMAIN', 550);
  reject(() => submissionRecord(sub('From: a@acme.test\r\n\r\nhi', 'acme/eu'), policy, 1 << 20), 'SENDER_DOMAIN', 550);
  reject(() => submissionRecord(sub('From: a@acme.test\r\nX-Postline-Priority: urgent\r\n\r\nhi'), policy, 1 << 20), 'RAW_CONTROL_HEADER', 554);
  reject(() => submissionRecord(sub(`From: a@acme.test\r\nX-Postline-List-Id: ${'l'.repeat(200)}\r\n\r\nhi`), policy, 1 << 20), 'RAW_CONTROL_HEADER', 554);
  reject(() => submissionRecord(sub(`From: a@acme.test\r\n\r\n${'x'.repeat(2000)}`), policy, 1024), 'MESSAGE_TOO_LARGE', 552);
  assert.throws(() => tagsOf(Array.from({ length: 21 }, (_, i) => `t${i}`).join(',')), RawMessageRejected);
  assert.throws(() => tagsOf('x'.repeat(65)), RawMessageRejected);
  assert.equal(tagsOf(' , '), undefined);
});

test('the idempotency fingerprint is made only for a message with X-Postline-Idempotency-Key (From and recipients, not the bytes)', () => {
  assert.equal(submissionRecord(sub('From: a@acme.test\r\n\r\nhi'), policy, 1 << 20).fingerprint, undefined);
  const keyed = (raw: string, rcptTo = ['a@example.org']) => submissionRecord({ ...sub(raw), rcptTo }, policy, 1 << 20).fingerprint;
  const first = keyed('From: a@acme.test\r\nX-Postline-Idempotency-Key: k1\r\nDate: Thu, 03 Dec 2026 18:40:00 +0000\r\n\r\nhi');
  assert.match(first ?? '', /^[0-9a-f]{64}$/);
  assert.equal(keyed('From: a@acme.test\r\nX-Postline-Idempotency-Key: k1\r\nDate: Thu, 03 Dec 2026 18:41:00 +0000\r\n\r\nhi again'), first);
  assert.notEqual(keyed('From: a@acme.test\r\nX-Postline-Idempotency-Key: k1\r\n\r\nhi', ['b@example.org']), first);
});

test('the record is checked against its contract without walking the base64 body: a bad field is still named', () => {
  // The raw field is ours (Buffer → base64), so only the other fields can break the contract.
  reject(() => submissionRecord(sub(`From: a@acme.test\r\nX-Postline-Idempotency-Key: ${'k'.repeat(300)}\r\n\r\nhi`), policy, 1 << 20), 'RAW_CONTROL_HEADER', 554);
  const { value } = submissionRecord(sub(`From: a@acme.test\r\n\r\n${'é'.repeat(3000)}`), policy, 1 << 20);
  assert.doesNotThrow(() => RawEmailRequestedContract.decode(value));
});

test('the record value is JSON.stringify(record) byte for byte (the base64 copied in last), non-ASCII and escaped fields included', () => {
  const cases = [
    submissionRecord(sub('From: a@acme.test\r\n\r\nhi'), policy, 1 << 20),
    submissionRecord({ ...sub('From: a@acme.test\r\nX-Postline-Tags: "q", back\\slash, ünï\r\nX-Postline-Idempotency-Key: k\u00e9\r\n\r\nbody'), mailFrom: 'b@acme.test', rcptTo: ['jörg@example.org', 'a@b.example'] }, policy, 1 << 20),
    submissionRecord(sub(`From: a@acme.test\r\n\r\n${'é'.repeat(3000)}`), policy, 1 << 20),
  ];
  for (const { record, value } of cases) {
    assert.equal(value.toString('utf8'), JSON.stringify(record));
    assert.ok(value.equals(Buffer.from(JSON.stringify(record))));
    assert.deepEqual(RawEmailRequestedContract.decode(value), record);
  }
});
