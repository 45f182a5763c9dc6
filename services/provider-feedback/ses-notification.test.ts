import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FeedbackKeyring } from '../../shared/feedback/feedback-token.js';
import type { ClassifyBounce } from '../../shared/bounces/classify.js';
import { decideSesNotification } from './ses-notification.js';

const keyring = new FeedbackKeyring([{ id: 1, secret: 's'.repeat(40) }]);
const token = keyring.sign({ purpose: 'ref', messageId: 'm-1', tenant: 'acme', recipient: 'bob@example.org', listId: 'weekly' });
/** Classifies by enhanced code only, so these cases test the SES mapping, not the rule table. */
const classify: ClassifyBounce = ({ enhanced }) =>
  enhanced === '5.1.1' ? { category: 'unknown-user', bounceClass: 'recipient' } : enhanced === '5.7.1' ? { category: 'policy', bounceClass: 'infrastructure' } : { category: 'other', bounceClass: 'infrastructure' };
const ctx = { keyring, classify };

const mail = (ref: string | undefined = token, name = 'X-Postline-Ref') => ({ messageId: 'ses-1', headers: ref === undefined ? [] : [{ name, value: ref }] });
const bounce = (bounceType: string, bounceSubType: string, recipients: object[] = [], form: 'notificationType' | 'eventType' = 'notificationType') => ({
  [form]: 'Bounce',
  bounce: { bounceType, bounceSubType, bouncedRecipients: recipients, timestamp: '2026-12-01T00:00:00Z' },
  mail: mail(),
});

test('SES bounces: permanent → bounced, classified on the diagnostic first, then on the bounce subtype', () => {
  const cases: Array<[string, object, string | undefined, string | undefined]> = [
    ['diagnostic says unknown user', bounce('Permanent', 'General', [{ emailAddress: 'bob@example.org', status: '5.1.1', diagnosticCode: 'smtp; 550 5.1.1 user unknown' }]), 'unknown-user', 'recipient'],
    ['diagnostic says policy, although SES calls it General', bounce('Permanent', 'General', [{ emailAddress: 'bob@example.org', status: '5.7.1', diagnosticCode: '550 5.7.1 rejected by policy' }]), 'policy', 'infrastructure'],
    ['no diagnostic, NoEmail', bounce('Permanent', 'NoEmail'), 'unknown-user', 'recipient'],
    ['no diagnostic, General', bounce('Permanent', 'General'), 'other', 'recipient'],
    ['suppressed at SES', bounce('Permanent', 'OnAccountSuppressionList'), 'other', 'recipient'],
    ['too large', bounce('Permanent', 'MessageTooLarge'), 'message-too-large', 'content'],
    ['content rejected', bounce('Permanent', 'ContentRejected', [{ emailAddress: 'bob@example.org', diagnosticCode: 'smtp; 554 rejected' }]), 'spam', 'content'],
    ['event publishing form (eventType)', bounce('Permanent', 'General', [{ emailAddress: 'bob@example.org', status: '5.1.1' }], 'eventType'), 'unknown-user', 'recipient'],
    ['transient', bounce('Transient', 'MailboxFull'), undefined, undefined],
    ['undetermined', bounce('Undetermined', 'Undetermined'), undefined, undefined],
  ];
  for (const [name, notification, category, bounceClass] of cases) {
    const d = decideSesNotification(notification, ctx);
    if (!category) {
      assert.deepEqual(d, { kind: 'ignored', outcome: 'transient', detail: `bounceType ${(notification as { bounce: { bounceType: string } }).bounce.bounceType}`, messageId: 'm-1', tenant: 'acme' }, name);
      continue;
    }
    assert.equal(d.kind, 'event', name);
    if (d.kind !== 'event') continue;
    assert.deepEqual([d.event.type, d.event.category, d.event.bounceClass, d.event.via], ['bounced', category, bounceClass, 'ses'], name);
    assert.deepEqual([d.event.messageId, d.event.tenant, d.event.recipients, d.event.listId], ['m-1', 'acme', ['bob@example.org'], 'weekly'], name);
  }
});

test('SES: the diagnosis is taken from the ref recipient\'s entry', () => {
  const d = decideSesNotification(
    bounce('Permanent', 'General', [
      { emailAddress: 'alice@example.org', status: '5.7.1', diagnosticCode: 'smtp; 550 5.7.1 policy' },
      { emailAddress: 'BOB@example.org', status: '5.1.1', diagnosticCode: 'smtp; 550 5.1.1 no such user' },
    ]),
    ctx,
  );
  assert.equal(d.kind === 'event' && d.event.smtp?.message, '550 5.1.1 no such user');
});

test('SES complaints, other notifications and missing or bad refs', () => {
  const complaint = (c: object, ref?: string) => ({ notificationType: 'Complaint', complaint: c, mail: mail(ref) });
  const cases: Array<[string, unknown, object]> = [
    ['complaint with a type', complaint({ complaintFeedbackType: 'Fraud' }), { type: 'complained', category: 'fraud' }],
    ['complaint without a type', complaint({}), { type: 'complained', category: 'abuse' }],
    ['complaint type that is not a token', complaint({ complaintFeedbackType: 'a b\nc' }), { type: 'complained', category: 'abuse' }],
    ['account suppression list', complaint({ complaintSubType: 'OnAccountSuppressionList' }), { outcome: 'not-feedback' }],
    ['delivery', { notificationType: 'Delivery', mail: mail() }, { outcome: 'not-feedback' }],
    ['header name in another case', { notificationType: 'Complaint', complaint: {}, mail: mail(token, 'x-postline-ref') }, { type: 'complained' }],
    ['no headers', { notificationType: 'Complaint', complaint: {}, mail: { headers: [] } }, { outcome: 'no-ref' }],
    ['forged ref', complaint({}, token.slice(0, -2) + 'aa'), { outcome: 'bad-ref' }],
    ['not an object', 'text', { outcome: 'malformed' }],
    ['bounce without its object', { notificationType: 'Bounce', mail: mail() }, { outcome: 'malformed' }],
  ];
  for (const [name, n, expected] of cases) {
    const d = decideSesNotification(n, ctx);
    const got = d.kind === 'event' ? { type: d.event.type, ...('category' in expected ? { category: d.event.category } : {}) } : { outcome: d.outcome };
    assert.deepEqual(got, expected, name);
  }
});

test('SES: a notification SNS delivers again gives the same event id (SES feedbackId); another feedbackId another', () => {
  const n = (feedbackId: string) => ({ notificationType: 'Bounce', bounce: { bounceType: 'Permanent', bounceSubType: 'General', bouncedRecipients: [], feedbackId }, mail: mail() });
  const id = (x: object) => {
    const d = decideSesNotification(x, ctx);
    return d.kind === 'event' ? d.event.eventId : undefined;
  };
  assert.ok(id(n('fb-1')));
  assert.equal(id(n('fb-1')), id(n('fb-1')));
  assert.notEqual(id(n('fb-1')), id(n('fb-2')));
});
