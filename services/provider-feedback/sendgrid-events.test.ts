import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FeedbackKeyring } from '../../shared/feedback/feedback-token.js';
import type { ClassifyBounce } from '../../shared/bounces/classify.js';
import { decideSendgridEvents } from './sendgrid-events.js';
import { smtpOf } from './feedback-decision.js';

const keyring = new FeedbackKeyring([{ id: 1, secret: 's'.repeat(40) }]);
const ref = keyring.sign({ purpose: 'ref', messageId: 'm-2', tenant: 'acme/eu', recipient: 'carol@example.net', fromDomain: 'acme.eu' });
const classify: ClassifyBounce = ({ enhanced, text }) =>
  enhanced === '5.1.1' || /does not exist/.test(text ?? '') ? { category: 'unknown-user', bounceClass: 'recipient' } : { category: 'blocklisted-ip', bounceClass: 'infrastructure' };

test('SendGrid events: bounce and blocked → bounced (class from the classifier), spamreport → complained, the rest ignored', () => {
  const decisions = decideSendgridEvents(
    [
      { event: 'bounce', type: 'bounce', status: '5.1.1', reason: '550 5.1.1 no such user', postline_ref: ref, timestamp: 1_700_000_000 },
      { event: 'bounce', type: 'blocked', status: '5.7.1', reason: '554 5.7.1 blocked using zen.spamhaus.org', postline_ref: ref },
      { event: 'bounce', type: 'blocked', reason: '550 mailbox does not exist', postline_ref: ref },
      { event: 'spamreport', postline_ref: ref },
      { event: 'dropped', postline_ref: ref },
      { event: 'deferred', postline_ref: ref },
      { event: 'delivered', postline_ref: ref },
      { event: 'bounce', type: 'bounce' },
      { event: 'bounce', postline_ref: 'zzzz' },
      42,
    ],
    { keyring, classify },
  );
  const summary = decisions.map((d) => (d.kind === 'event' ? `${d.event.type}:${d.event.category}:${d.event.bounceClass ?? '-'}` : d.outcome));
  assert.deepEqual(summary, [
    'bounced:unknown-user:recipient',
    'bounced:blocklisted-ip:infrastructure',
    'bounced:unknown-user:recipient',
    'complained:abuse:-',
    'not-feedback',
    'not-feedback',
    'not-feedback',
    'no-ref',
    'bad-ref',
    'malformed',
  ]);
  const first = decisions[0];
  assert.ok(first.kind === 'event');
  assert.deepEqual(
    { ...first.event },
    {
      type: 'bounced',
      messageId: 'm-2',
      tenant: 'acme/eu',
      recipients: ['carol@example.net'],
      domain: 'example.net',
      fromDomain: 'acme.eu',
      via: 'sendgrid',
      category: 'unknown-user',
      bounceClass: 'recipient',
      smtp: { code: 550, enhanced: '5.1.1', message: '550 5.1.1 no such user' },
      reason: 'SendGrid bounce',
      at: '2023-11-14T22:13:20.000Z',
    },
  );
});

test('smtpOf: code, enhanced code and text from the diagnostic forms providers use', () => {
  const cases: Array<[string | undefined, string | undefined, object]> = [
    ['smtp; 550 5.1.1 <bob@x>: user unknown', undefined, { code: 550, enhanced: '5.1.1', message: '550 5.1.1 <bob@x>: user unknown' }],
    ['SMTP;550-5.2.2 mailbox full', '5.2.2', { code: 550, enhanced: '5.2.2', message: '550-5.2.2 mailbox full' }],
    ['Amazon SES did not send the message', '5.1.1', { enhanced: '5.1.1', message: 'Amazon SES did not send the message' }],
    ['550', 'not-a-status', { code: 550, message: '550' }],
    [undefined, undefined, {}],
  ];
  for (const [diagnostic, status, expected] of cases) assert.deepEqual(smtpOf(diagnostic, status), expected, String(diagnostic));
});

test('SendGrid events: a batch posted again (a late answer) gives the same event ids; another sg_event_id another', () => {
  const batch = [
    { event: 'bounce', type: 'bounce', status: '5.1.1', reason: '550 5.1.1 no such user', postline_ref: ref, sg_event_id: 'sg-a' },
    { event: 'spamreport', postline_ref: ref, sg_event_id: 'sg-b' },
  ];
  const ids = (events: unknown[]) => decideSendgridEvents(events, { keyring, classify }).map((d) => (d.kind === 'event' ? d.event.eventId : undefined));
  const first = ids(batch);
  assert.deepEqual(ids(batch), first);
  assert.equal(new Set(first).size, 2);
  assert.match(first[0] ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.deepEqual(ids([{ ...batch[0], sg_event_id: undefined }]), [undefined], 'no id from SendGrid: the publisher picks a random one');
});
