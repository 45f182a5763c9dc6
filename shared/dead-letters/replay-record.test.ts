import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DeadLetter } from '../contracts/dead-letter.js';
import { EmailReadyForDispatchContract, type EmailReadyForDispatch } from '../contracts/email-ready-for-dispatch.js';
import { replayRecord } from './replay-record.js';

const NOW = new Date('2025-03-01T12:00:00.000Z');

const dispatch: EmailReadyForDispatch = {
  schemaVersion: 1,
  messageId: 'm-1',
  tenant: 'acme',
  priority: 'critical',
  domain: 'example.org',
  envelope: { from: 'b@acme.test', to: ['a@example.org'] },
  raw: 'Subject: x\r\n\r\nhi\r\n',
  acceptedAt: '2025-02-28T10:00:00.000Z',
  attempt: 7,
  firstAttemptAt: '2025-02-28T10:00:01.000Z',
  notBefore: '2025-02-28T11:00:00.000Z',
  lastReason: 'SMTP_SERVICE_UNAVAILABLE: 421',
};

function letter(over: Partial<DeadLetter['source']> & { code?: string } = {}): DeadLetter {
  const { code = 'EXPIRED', ...source } = over;
  return {
    schemaVersion: 1,
    messageId: 'm-1',
    tenant: 'acme',
    code,
    reason: 'why',
    stage: 'dispatcher',
    failedAt: '2025-02-28T11:00:00.000Z',
    source: {
      topic: 'email.dispatch.critical',
      partition: 0,
      offset: '42',
      key: 'example.org',
      value: EmailReadyForDispatchContract.encode(dispatch).toString('utf8'),
      valueEncoding: 'utf8',
      headers: { traceparent: '00-abc-def-01' },
      ...source,
    },
  };
}

test('an expired delivery goes back to dispatch as the next attempt, with a fresh time budget and no wait', () => {
  const plan = replayRecord(letter(), NOW);
  assert.ok(plan.ok);
  assert.equal(plan.record.kind, 'dispatch');
  assert.equal(plan.record.topic, 'email.dispatch.critical');
  assert.equal(plan.record.key, 'example.org');
  assert.deepEqual(plan.record.headers, { traceparent: '00-abc-def-01' });
  const r = EmailReadyForDispatchContract.decode(plan.record.value);
  assert.equal(r.attempt, 8);
  assert.equal(r.replayedAt, NOW.toISOString());
  assert.equal(r.notBefore, undefined);
  assert.equal(r.acceptedAt, dispatch.acceptedAt, 'accepted time kept (latency, timeline)');
  assert.equal(r.firstAttemptAt, dispatch.firstAttemptAt);
  assert.equal(r.raw, dispatch.raw);
});

test('records from other topics are replayed verbatim to where they came from', () => {
  const cases: Array<[string, DeadLetter, { topic: string; key: string | null; value: string }]> = [
    [
      'a request the renderer refused',
      letter({ code: 'TEMPLATE_NOT_FOUND', topic: 'email.requested', key: 'm-1', value: '{"schemaVersion":1,"messageId":"m-1"}' }),
      { topic: 'email.requested', key: 'm-1', value: '{"schemaVersion":1,"messageId":"m-1"}' },
    ],
    ['an invalid dispatch record', letter({ code: 'VALIDATION_FAILED', value: '{"nope":true}' }), { topic: 'email.dispatch.critical', key: 'example.org', value: '{"nope":true}' }],
    ['a binary value', letter({ topic: 'email.requested', key: null, value: Buffer.from([0xff, 0x00, 0x01]).toString('base64'), valueEncoding: 'base64' }), { topic: 'email.requested', key: null, value: '\xff\x00\x01' }],
  ];
  for (const [name, l, expected] of cases) {
    const plan = replayRecord(l, NOW);
    assert.ok(plan.ok, name);
    assert.equal(plan.record.kind, 'verbatim', name);
    assert.equal(plan.record.topic, expected.topic, name);
    assert.equal(plan.record.key, expected.key, name);
    assert.deepEqual(plan.record.value, Buffer.from(expected.value, 'latin1'), name);
  }
});

test('a dead letter without a value cannot be replayed', () => {
  const plan = replayRecord(letter({ value: null }), NOW);
  assert.deepEqual(plan, { ok: false, reason: 'the dead letter has no record value to replay' });
});

test('a request refused for standing in the wrong priority lane replays to the shared lane, which takes any priority', () => {
  const value = JSON.stringify({ schemaVersion: 1, messageId: 'm-1', priority: 'bulk' });
  const plan = replayRecord(letter({ code: 'PRIORITY_MISMATCH', topic: 'email.requested.critical', key: 'm-1', value }), NOW);
  assert.ok(plan.ok);
  assert.equal(plan.record.kind, 'verbatim');
  assert.equal(plan.record.topic, 'email.requested');
  assert.equal(plan.record.value.toString('utf8'), value);
});
