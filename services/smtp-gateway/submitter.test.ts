import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { configuredSenderDomains } from '../../shared/sender-domains.js';
import { UrgentMail } from '../../shared/urgent-mail.js';
import { submissionRecord } from './submission-record.js';
import { submitter } from './submitter.js';

test('each submission reports its priority as urgent mail coming in, so the API\'s batches in this process can give way to it', async () => {
  const sent: string[] = [];
  const urgent = new UrgentMail();
  const submit = submitter({
    producer: { send: async (topic: string) => (sent.push(topic), { topic, partition: 0, offset: '0' }) },
    events: { publish: async () => undefined },
    timeoutMs: 1000,
    logger: pino({ level: 'silent' }),
    urgent,
  } as unknown as Parameters<typeof submitter>[0]);
  const policy = configuredSenderDomains({ acme: ['acme.test'] });
  const sub = (priority: string) => submissionRecord({ tenant: 'acme', messageId: `m-${priority}`, acceptedAt: '2026-12-05T23:00:00.000Z', mailFrom: '', rcptTo: ['a@example.org'], raw: Buffer.from(`From: a@acme.test\r\nX-Postline-Priority: ${priority}\r\n\r\nhi\r\n`) }, policy, 1 << 20);
  await submit(sub('bulk'));
  assert.equal(urgent.moreUrgentWithin('bulk', 3000), false);
  await submit(sub('critical'));
  assert.deepEqual([urgent.moreUrgentWithin('bulk', 3000), urgent.moreUrgentWithin('transactional', 3000)], [true, true]);
  assert.deepEqual(sent, ['email.requested.bulk', 'email.requested.critical']);
});
