/**
 * Amazon SES notifications (the `Message` of an SNS notification, already verified) → what
 * Postline does with them. Both SES forms are read: feedback notifications (`notificationType`)
 * and configuration-set event publishing (`eventType`). The message is identified by the
 * `X-Postline-Ref` header SES returns in `mail.headers` when "Include original headers" is on.
 *
 * - `Bounce`, bounceType `Permanent` → `bounced`: category and class from the classifier on the
 *   recipient's diagnosticCode and status; when those say nothing (`other`), SES's bounceSubType
 *   decides (NoEmail → unknown-user, MessageTooLarge → message-too-large, Content/Attachment
 *   rejected → spam, General/Suppressed → a recipient-class `other`: SES tells senders to stop
 *   mailing such addresses).
 * - `Bounce` Transient/Undetermined → ignored (SES retried already; nothing is final for us).
 * - `Complaint` → `complained`, category = complaintFeedbackType (or `abuse`); a "complaint"
 *   whose subtype is OnAccountSuppressionList (SES did not send at all) is ignored.
 * - `Delivery`, `Send`, `Open`, … → ignored.
 */
import type { FeedbackRef } from '../../shared/feedback/feedback-token.js';
import type { BounceVerdict } from '../../shared/bounces/classify.js';
import { stableEventId } from '../../shared/events.js';
import { atOf, ignored, isDecision, refFields, refOf, smtpOf, type DecisionContext, type FeedbackDecision } from './feedback-decision.js';

export const REF_HEADER = 'x-postline-ref';

const SUBTYPES: Readonly<Record<string, BounceVerdict>> = {
  NoEmail: { category: 'unknown-user', bounceClass: 'recipient' },
  MessageTooLarge: { category: 'message-too-large', bounceClass: 'content' },
  ContentRejected: { category: 'spam', bounceClass: 'content' },
  AttachmentRejected: { category: 'spam', bounceClass: 'content' },
  General: { category: 'other', bounceClass: 'recipient' },
  Suppressed: { category: 'other', bounceClass: 'recipient' },
  OnAccountSuppressionList: { category: 'other', bounceClass: 'recipient' },
};

type Obj = Record<string, unknown>;
const obj = (x: unknown): Obj | undefined => (x && typeof x === 'object' && !Array.isArray(x) ? (x as Obj) : undefined);
const text = (x: unknown): string | undefined => (typeof x === 'string' ? x : undefined);

/** Decides one SES notification (the parsed JSON of the SNS `Message`). */
export function decideSesNotification(notification: unknown, ctx: DecisionContext): FeedbackDecision {
  const n = obj(notification);
  if (!n) return ignored('malformed', 'not a JSON object');
  const type = text(n.notificationType) ?? text(n.eventType);
  if (type !== 'Bounce' && type !== 'Complaint') return ignored('not-feedback', type ?? 'no notificationType');
  const mail = obj(n.mail);
  const found = refOf(ctx.keyring, refHeaderOf(mail));
  if (isDecision(found)) return found;
  const decision = type === 'Bounce' ? decideBounce(obj(n.bounce), found, ctx) : decideComplaint(obj(n.complaint), found);
  // SNS delivers again when our answer was late: SES's feedbackId (else its message id) keeps the event id.
  const sesId = text(obj(type === 'Bounce' ? n.bounce : n.complaint)?.feedbackId) ?? text(mail?.messageId);
  return decision.kind === 'event' && sesId ? { ...decision, event: { ...decision.event, eventId: stableEventId('ses', type, sesId, found.messageId, found.recipient) } } : decision;
}

function refHeaderOf(mail: Obj | undefined): string | undefined {
  const headers = Array.isArray(mail?.headers) ? mail.headers : [];
  for (const h of headers) {
    const header = obj(h);
    if (text(header?.name)?.toLowerCase() === REF_HEADER) return text(header?.value);
  }
  return undefined;
}

function decideBounce(bounce: Obj | undefined, ref: FeedbackRef, ctx: DecisionContext): FeedbackDecision {
  if (!bounce) return ignored('malformed', 'no bounce object', ref);
  const bounceType = text(bounce.bounceType);
  if (bounceType !== 'Permanent') return ignored('transient', `bounceType ${bounceType ?? 'missing'}`, ref);
  const recipients = (Array.isArray(bounce.bouncedRecipients) ? bounce.bouncedRecipients : []).map(obj).filter((r): r is Obj => r !== undefined);
  // The ref names the recipient of this copy; its entry carries the diagnosis (else the first one).
  const entry = recipients.find((r) => text(r.emailAddress)?.toLowerCase() === ref.recipient) ?? recipients[0];
  const smtp = smtpOf(text(entry?.diagnosticCode), text(entry?.status));
  let classified = ctx.classify({ code: smtp.code, enhanced: smtp.enhanced, text: smtp.message });
  const bySubtype = SUBTYPES[text(bounce.bounceSubType) ?? ''];
  if (classified.category === 'other' && bySubtype) classified = bySubtype;
  return {
    kind: 'event',
    event: {
      type: 'bounced',
      ...refFields(ref),
      via: 'ses',
      category: classified.category,
      bounceClass: classified.bounceClass,
      smtp: { ...smtp, ...(smtp.message ? {} : { message: `SES ${bounceType}/${text(bounce.bounceSubType) ?? 'General'}` }) },
      reason: `SES bounce ${bounceType}/${text(bounce.bounceSubType) ?? 'General'}`,
      ...atOf(bounce.timestamp),
    },
  };
}

function decideComplaint(complaint: Obj | undefined, ref: FeedbackRef): FeedbackDecision {
  if (!complaint) return ignored('malformed', 'no complaint object', ref);
  if (text(complaint.complaintSubType) === 'OnAccountSuppressionList') return ignored('not-feedback', 'OnAccountSuppressionList', ref);
  const feedbackType = text(complaint.complaintFeedbackType)?.trim().toLowerCase();
  return {
    kind: 'event',
    event: {
      type: 'complained',
      ...refFields(ref),
      via: 'ses',
      category: feedbackType && /^[a-z0-9-]{1,32}$/.test(feedbackType) ? feedbackType : 'abuse',
      ...atOf(complaint.timestamp),
    },
  };
}
