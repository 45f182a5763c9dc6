/**
 * The request fields of issue 13 at the send API's checks (pure: shape + normalize):
 * `listId` and `unsubscribe` reach the EmailRequested record; a list id that could break a
 * header, an `X-Postline-Ref` of the caller's own and `unsubscribe: true` next to a caller's
 * List-Unsubscribe are refused, naming the field.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EmailRequestedContract } from '../../shared/contracts/email-requested.js';
import { checkBatchItemShape, normalizeEmail, type NormalizeLimits } from '../../services/ingest/normalize-email.js';
import type { EmailBody } from '../../services/ingest/email-body-schema.js';
import { RequestRejected } from '../../shared/http/errors.js';

const ids = { tenant: 'acme/eu', messageId: '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b', acceptedAt: '2026-01-02T03:04:05.000Z' };
const limits: NormalizeLimits = { maxAttachmentBytes: 1000, maxAttachmentsTotalBytes: 1500, maxMessageBytes: 20_000 };
const base: EmailBody = { from: 'Shop <shop@example.com>', to: ['a@example.org'], subject: 'Hi', text: 'Hello', priority: 'bulk' };

function fieldsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof RequestRejected, String(err));
    return [...new Set((err.fields ?? []).map((f) => f.field))];
  }
  return [];
}

test('listId and unsubscribe go into the record, and the contract accepts it', () => {
  const { record, value } = normalizeEmail({ ...base, listId: 'Weekly news (EU) — ünïcode', unsubscribe: false }, ids, limits);
  assert.equal(record.listId, 'Weekly news (EU) — ünïcode');
  assert.equal(record.unsubscribe, false);
  assert.deepEqual(EmailRequestedContract.decode(value), record);
  const plain = normalizeEmail(base, ids, limits).record;
  assert.equal('listId' in plain, false);
  assert.equal('unsubscribe' in plain, false);
  assert.deepEqual(fieldsOf(() => checkBatchItemShape({ ...base, listId: 'news', unsubscribe: true })), []);
});

test('a list id with a control character, too long or empty, and a non-boolean unsubscribe are refused by shape and by the contract', () => {
  for (const listId of ['news\r\nBcc: x@example.org', 'tab\there', 'bell\u0007', 'del\u007f', 'l'.repeat(129), '']) {
    assert.deepEqual(fieldsOf(() => checkBatchItemShape({ ...base, listId })), ['listId'], JSON.stringify(listId));
    assert.deepEqual(fieldsOf(() => normalizeEmail({ ...base, listId }, ids, limits)), ['listId'], JSON.stringify(listId));
  }
  assert.deepEqual(fieldsOf(() => checkBatchItemShape({ ...base, unsubscribe: 'yes' })), ['unsubscribe']);
});

test('the caller may not set X-Postline-Ref, nor ask for unsubscribe: true with a List-Unsubscribe of its own', () => {
  assert.deepEqual(fieldsOf(() => normalizeEmail({ ...base, headers: { 'x-postline-ref': 'abc' } }, ids, limits)), ['headers.x-postline-ref']);
  assert.deepEqual(fieldsOf(() => normalizeEmail({ ...base, unsubscribe: true, headers: { 'List-Unsubscribe': '<https://own.example/u>' } }, ids, limits)), ['unsubscribe']);
  // Its own List-Unsubscribe alone is fine (the renderer then adds none), and so is unsubscribe: false with it.
  assert.deepEqual(fieldsOf(() => normalizeEmail({ ...base, headers: { 'List-Unsubscribe': '<https://own.example/u>' } }, ids, limits)), []);
  assert.deepEqual(fieldsOf(() => normalizeEmail({ ...base, unsubscribe: false, headers: { 'List-Unsubscribe': '<https://own.example/u>' } }, ids, limits)), []);
});
