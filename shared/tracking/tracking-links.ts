/**
 * The tracker's URLs and their tokens, shared by the renderer (which writes them) and the
 * tracker (which reads them). Tokens are feedback tokens of purpose `track`
 * (shared/feedback/feedback-token.ts), signed with the same rotatable keys (`feedback.keys`, the
 * `postline-feedback-keys` Secret):
 *   open pixel   `<base>/o/<token>.gif`
 *   click        `<base>/c/<token>?u=<the original URL, percent-encoded>`
 * A click token is bound to its URL (the MAC covers it), so neither a changed URL nor a token
 * moved to another URL verifies: the tracker redirects only to URLs the renderer signed.
 */
import type { FeedbackKeyring, FeedbackRef } from '../feedback/feedback-token.js';

/** Who and what a tracking link is about. */
export interface TrackedCopy {
  messageId: string;
  tenant: string;
  recipient: string;
  /** Unix seconds: the earliest the message could be sent (acceptedAt, or sendAt when later). */
  issuedAt: number;
}

/** A verified open or click. */
export interface TrackedHit {
  messageId: string;
  tenant: string;
  recipient: string;
  kind: 'open' | 'click';
  linkIndex: number;
  issuedAt: number;
  /** Clicks: the URL to redirect to. */
  url?: string;
}

/** Only these are ever signed or redirected to (never javascript:, data:, …). */
export const TRACKABLE_URL = /^https?:\/\/[^\s]+$/i;

/** The open pixel's URL for one recipient's copy. Throws when a field is too long for a token. */
export function pixelUrl(keyring: FeedbackKeyring, base: string, copy: TrackedCopy): string {
  const token = keyring.sign({ purpose: 'track', messageId: copy.messageId, tenant: copy.tenant, recipient: copy.recipient, track: { kind: 'open', linkIndex: 0, issuedAt: copy.issuedAt } });
  return `${base}/o/${token}.gif`;
}

/** The redirect URL of link `linkIndex` (pointing at `url`) in one recipient's copy. */
export function clickUrl(keyring: FeedbackKeyring, base: string, copy: TrackedCopy, linkIndex: number, url: string): string {
  const token = keyring.sign({ purpose: 'track', messageId: copy.messageId, tenant: copy.tenant, recipient: copy.recipient, track: { kind: 'click', linkIndex, issuedAt: copy.issuedAt } }, url);
  return `${base}/c/${token}?u=${encodeURIComponent(url)}`;
}

function hitOf(ref: FeedbackRef | undefined, kind: 'open' | 'click', url?: string): TrackedHit | undefined {
  if (!ref?.track || ref.track.kind !== kind) return undefined;
  return { messageId: ref.messageId, tenant: ref.tenant, recipient: ref.recipient, kind, linkIndex: ref.track.linkIndex, issuedAt: ref.track.issuedAt, ...(url !== undefined ? { url } : {}) };
}

/** The open a pixel token names, or undefined (malformed, tampered, unknown key, a click token). */
export function verifyOpen(keyring: FeedbackKeyring, token: string): TrackedHit | undefined {
  return hitOf(keyring.verify(token, 'track'), 'open');
}

/** The click a token + URL name, or undefined unless the token was signed for exactly this URL. */
export function verifyClick(keyring: FeedbackKeyring, token: string, url: string | undefined): TrackedHit | undefined {
  if (url === undefined || !TRACKABLE_URL.test(url)) return undefined;
  return hitOf(keyring.verify(token, 'track', url), 'click', url);
}
