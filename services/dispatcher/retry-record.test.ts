import { test } from 'node:test';
import assert from 'node:assert/strict';
import { retryRecord } from './retry-record.js';
import { EmailReadyForDispatchContract, type EmailReadyForDispatch } from '../../shared/contracts/email-ready-for-dispatch.js';

const now = new Date('2030-01-01T00:00:00.000Z');
const inOneMinute = new Date('2030-01-01T00:01:00.000Z');

const record: EmailReadyForDispatch = {
  schemaVersion: 1,
  messageId: 'm-1',
  tenant: 't',
  priority: 'transactional',
  domain: 'example.org',
  envelope: { from: 'a@example.com', to: ['x@example.org', 'y@example.org'] },
  raw: 'Subject: hi\r\n\r\nbody\r\n',
  acceptedAt: '2029-12-31T23:59:59.000Z',
  attempt: 1,
};

test('retryRecord: next attempt for the pending recipients with first-attempt time, reason and not-before', () => {
  const r = retryRecord(record, { recipients: ['y@example.org'], reason: 'SMTP_TRANSIENT: 451 4.3.0 later', attemptStartedAt: now, notBefore: inOneMinute });
  assert.equal(r.attempt, 2);
  assert.deepEqual(r.envelope, { from: 'a@example.com', to: ['y@example.org'] });
  assert.equal(r.firstAttemptAt, now.toISOString());
  assert.equal(r.notBefore, inOneMinute.toISOString());
  assert.equal(r.lastReason, 'SMTP_TRANSIENT: 451 4.3.0 later');
  assert.equal(r.raw, record.raw);
  assert.equal(r.acceptedAt, record.acceptedAt);
  assert.deepEqual(EmailReadyForDispatchContract.check(r), []);
  assert.deepEqual(record.envelope.to, ['x@example.org', 'y@example.org'], 'the input record is not changed');
});

test('retryRecord: a later retry keeps the time of the first attempt; long reasons are cut', () => {
  const first = retryRecord(record, { recipients: ['y@example.org'], reason: 'x', attemptStartedAt: now, notBefore: inOneMinute });
  const again = retryRecord(first, { recipients: ['y@example.org'], reason: 'x'.repeat(5000), attemptStartedAt: new Date('2030-01-01T00:02:00Z'), notBefore: inOneMinute });
  assert.equal(again.attempt, 3);
  assert.equal(again.firstAttemptAt, now.toISOString());
  assert.equal(again.lastReason?.length, 1000);
});
