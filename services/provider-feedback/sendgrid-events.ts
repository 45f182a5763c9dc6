/**
 * SendGrid Event Webhook events (the parsed, verified JSON array) → what Postline does with
 * them. The message is identified by the `postline_ref` unique arg (shared/feedback/esp-headers.ts).
 *
 * - `bounce` → `bounced`, category and class from the classifier on `reason` and `status`.
 *   Both of SendGrid's bounce types count: `bounce` (a hard bounce) and `blocked` (the receiver
 *   refused the message; SendGrid does not retry it either, so it is final for this message).
 *   A block is usually the sender's problem (reputation, content, policy), and the classifier
 *   then says infrastructure or content, which never suppresses; when the reply says the
 *   mailbox does not exist it is recipient class like any other bounce.
 * - `spamreport` → `complained` (category `abuse`).
 * - `dropped`, `deferred`, `delivered`, `processed`, `open`, `click`, … → ignored.
 */
import { SENDGRID_REF_ARG } from '../../shared/feedback/esp-headers.js';
import { stableEventId } from '../../shared/events.js';
import { atOf, ignored, isDecision, refFields, refOf, smtpOf, type DecisionContext, type FeedbackDecision } from './feedback-decision.js';

type Obj = Record<string, unknown>;
const text = (x: unknown): string | undefined => (typeof x === 'string' ? x : undefined);

/** Decides each event of one webhook POST, in order. */
export function decideSendgridEvents(events: readonly unknown[], ctx: DecisionContext): FeedbackDecision[] {
  return events.map((e) => decideOne(e, ctx));
}

function decideOne(raw: unknown, ctx: DecisionContext): FeedbackDecision {
  const decision = decideEvent(raw, ctx);
  // SendGrid posts a batch again when our answer was late: its sg_event_id keeps the event id.
  const sgId = decision.kind === 'event' ? text((raw as Obj).sg_event_id) : undefined;
  return decision.kind === 'event' && sgId ? { ...decision, event: { ...decision.event, eventId: stableEventId('sendgrid', sgId) } } : decision;
}

function decideEvent(raw: unknown, ctx: DecisionContext): FeedbackDecision {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return ignored('malformed', 'not a JSON object');
  const e = raw as Obj;
  const kind = text(e.event);
  if (kind !== 'bounce' && kind !== 'spamreport') return ignored('not-feedback', kind ?? 'no event');
  const found = refOf(ctx.keyring, e[SENDGRID_REF_ARG]);
  if (isDecision(found)) return found;
  if (kind === 'spamreport') return { kind: 'event', event: { type: 'complained', ...refFields(found), via: 'sendgrid', category: 'abuse', ...atOf(e.timestamp) } };
  const bounceType = text(e.type) === 'blocked' ? 'blocked' : 'bounce';
  const smtp = smtpOf(text(e.reason), text(e.status));
  const classified = ctx.classify({ code: smtp.code, enhanced: smtp.enhanced, text: smtp.message });
  return {
    kind: 'event',
    event: {
      type: 'bounced',
      ...refFields(found),
      via: 'sendgrid',
      category: classified.category,
      bounceClass: classified.bounceClass,
      smtp: { ...smtp, ...(smtp.message ? {} : { message: `SendGrid ${bounceType}` }) },
      reason: `SendGrid ${bounceType}`,
      ...atOf(e.timestamp),
    },
  };
}
