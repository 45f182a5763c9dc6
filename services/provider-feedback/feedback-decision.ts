/**
 * What one provider notification means to Postline, decided by pure functions (ses-notification.ts,
 * sendgrid-events.ts): an event to publish on `email.events`, or a reason to ignore it. The
 * message, tenant and recipient always come from the verified `ref` token the message carried,
 * never from the provider's payload.
 */
import type { EventInput } from '../../shared/events.js';
import type { FeedbackKeyring, FeedbackRef } from '../../shared/feedback/feedback-token.js';
import type { BounceVerdict, ClassifyBounce } from '../../shared/bounces/classify.js';

/** Why a notification produced no event (a bounded metric label). */
export type IgnoredOutcome =
  /** A temporary failure: the provider retries, nothing is final yet. */
  | 'transient'
  /** A delivery, an open, a deferral…: nothing feedback is about. */
  | 'not-feedback'
  /** The message carried no X-Postline-Ref (or SES truncated the headers). */
  | 'no-ref'
  /** A ref that does not verify (forged, another installation's, unknown key): never trusted. */
  | 'bad-ref'
  /** The payload lacks what a notification of its kind must have. */
  | 'malformed';

export type FeedbackDecision =
  | { kind: 'event'; event: EventInput & { type: 'bounced' | 'complained' } }
  | { kind: 'ignored'; outcome: IgnoredOutcome; detail?: string; messageId?: string; tenant?: string };

export interface DecisionContext {
  keyring: FeedbackKeyring;
  classify: ClassifyBounce;
}

export const ignored = (outcome: IgnoredOutcome, detail?: string, ref?: FeedbackRef): FeedbackDecision => ({
  kind: 'ignored',
  outcome,
  ...(detail ? { detail } : {}),
  ...(ref ? { messageId: ref.messageId, tenant: ref.tenant } : {}),
});

/** The verified ref of a token, or the decision to drop the notification. */
export function refOf(keyring: FeedbackKeyring, token: unknown): FeedbackRef | FeedbackDecision {
  if (typeof token !== 'string' || token.trim() === '') return ignored('no-ref');
  return keyring.verify(token.trim(), 'ref') ?? ignored('bad-ref');
}

export const isDecision = (x: FeedbackRef | FeedbackDecision): x is FeedbackDecision => 'kind' in x;

/** The fields every feedback event takes from its ref. */
export function refFields(ref: FeedbackRef): Pick<EventInput, 'messageId' | 'tenant' | 'recipients' | 'domain' | 'fromDomain' | 'listId'> {
  return {
    messageId: ref.messageId,
    tenant: ref.tenant,
    recipients: [ref.recipient],
    domain: ref.recipient.slice(ref.recipient.lastIndexOf('@') + 1),
    ...(ref.fromDomain ? { fromDomain: ref.fromDomain } : {}),
    ...(ref.listId ? { listId: ref.listId } : {}),
  };
}

/** SMTP reply parts of a diagnostic such as `smtp; 550 5.1.1 <bob@x>: user unknown` or `550 5.1.1 user unknown`. */
export function smtpOf(diagnostic: string | undefined, status: string | undefined): { code?: number; enhanced?: string; message?: string } {
  const text = (diagnostic ?? '').replace(/^\s*smtp\s*;\s*/i, '').trim();
  const code = /^([245]\d\d)(?:[ -]|$)/.exec(text)?.[1];
  const enhanced = (status && /^[245]\.\d{1,3}\.\d{1,3}$/.test(status.trim()) ? status.trim() : undefined) ?? /(?:^|\s)([245]\.\d{1,3}\.\d{1,3})(?:\s|$)/.exec(text)?.[1];
  return {
    ...(code ? { code: Number(code) } : {}),
    ...(enhanced ? { enhanced } : {}),
    ...(text ? { message: text.slice(0, 1000) } : {}),
  };
}

/** A timestamp the provider gave, when it is a valid date; otherwise now (the publisher's default). */
export function atOf(value: unknown): { at?: string } {
  const ms = typeof value === 'number' ? value * 1000 : typeof value === 'string' ? Date.parse(value) : NaN;
  return Number.isFinite(ms) && ms > 0 ? { at: new Date(ms).toISOString() } : {};
}

export type { BounceVerdict };
