/**
 * What the inbound service does with mail for the bounce domain, as pure decisions: which
 * recipients it accepts at RCPT (signed return paths, signed mailto unsubscribes, the complaint
 * addresses) and which events a received message becomes. Everything an event says about the
 * message, tenant and recipient comes from a verified feedback token, never from the mail's text.
 */
import net from 'node:net';
import { recipientHash, tokenOfLocalPart, RETURN_PATH_PREFIX, UNSUBSCRIBE_MAILTO_PREFIX, type FeedbackKeyring, type FeedbackRef } from '../../shared/feedback/feedback-token.js';
import type { EventInput } from '../../shared/events.js';
import { bounceOf, isPermanentFailure, type BounceRecipient } from './bounce-parser.js';
import { arfOf, type ParsedArf } from './arf-parser.js';
import { bareAddress, type OriginalHeaders, type ReportParts } from './report-parts.js';
import type { BounceVerdict, BounceInput } from '../../shared/bounces/classify.js';

export type InboundRoute =
  | { kind: 'bounce'; address: string; ref: FeedbackRef }
  | { kind: 'unsubscribe'; address: string; ref: FeedbackRef }
  | { kind: 'complaint'; address: string };

export interface RouteOptions {
  keyring: FeedbackKeyring;
  /** feedback.returnPathDomain (lower-case). */
  domain: string;
  /** inbound.complaintAddresses (lower-case local parts). */
  complaintLocalParts: readonly string[];
}

/** The route of an RCPT TO address, or undefined: not ours, unsigned, forged or for another purpose (550). */
export function routeOf(address: string, opts: RouteOptions): InboundRoute | undefined {
  const at = address.lastIndexOf('@');
  if (at <= 0 || address.slice(at + 1).toLowerCase() !== opts.domain) return undefined;
  const local = address.slice(0, at).toLowerCase();
  const bounce = tokenOfLocalPart(local, RETURN_PATH_PREFIX);
  if (bounce) {
    const ref = opts.keyring.verify(bounce, 'return-path');
    return ref ? { kind: 'bounce', address: address.toLowerCase(), ref } : undefined;
  }
  const unsubscribe = tokenOfLocalPart(local, UNSUBSCRIBE_MAILTO_PREFIX);
  if (unsubscribe) {
    const ref = opts.keyring.verify(unsubscribe, 'unsubscribe');
    return ref ? { kind: 'unsubscribe', address: address.toLowerCase(), ref } : undefined;
  }
  return opts.complaintLocalParts.includes(local) ? { kind: 'complaint', address: address.toLowerCase() } : undefined;
}

/** `published`: events to send; `ignored`: nothing to report (a delay notice, an auto-reply); `dropped`: refused content (a metric and a log line). */
export type Outcome = 'published' | 'ignored' | 'dropped';

export interface Verdict {
  kind: InboundRoute['kind'];
  outcome: Outcome;
  /** Why, for the log (a fixed word: not-a-bounce, recipient-mismatch, unverified-ref, …). */
  reason: string;
  messageId?: string;
  tenant?: string;
  events: EventInput[];
}

export interface DecideContext {
  keyring: FeedbackKeyring;
  classify: (reply: BounceInput) => BounceVerdict;
}

/** Feedback types that are not complaints: a "this is not spam" report, DMARC failure reports. */
const NOT_COMPLAINTS = new Set(['not-spam', 'auth-failure']);

const domainOf = (address: string) => address.slice(address.lastIndexOf('@') + 1);

/** The `ref` token of the original headers, when it verifies (and names the same message as `about`, if given). */
function refOf(headers: OriginalHeaders | undefined, keyring: FeedbackKeyring, about?: FeedbackRef): FeedbackRef | undefined {
  const token = headers?.ref?.trim();
  const ref = token ? keyring.verify(token, 'ref') : undefined;
  if (!ref || (about && (ref.messageId !== about.messageId || ref.tenant !== about.tenant))) return undefined;
  return ref;
}

const context = (ref: FeedbackRef | undefined) => ({ ...(ref?.fromDomain ? { fromDomain: ref.fromDomain } : {}), ...(ref?.listId ? { listId: ref.listId } : {}) });

function bounceVerdict(parts: ReportParts, route: Extract<InboundRoute, { kind: 'bounce' }>, ctx: DecideContext): Verdict {
  const ids = { messageId: route.ref.messageId, tenant: route.ref.tenant };
  const bounce = bounceOf(parts);
  if (!bounce) return { kind: 'bounce', outcome: 'ignored', reason: 'not-a-bounce', ...ids, events: [] };
  const failed = bounce.recipients.filter(isPermanentFailure);
  if (failed.length === 0) return { kind: 'bounce', outcome: 'ignored', reason: 'no-permanent-failure', ...ids, events: [] };
  const matches = (r: BounceRecipient) => recipientHash(r.address) === route.ref.recipientHash || (r.originalRecipient !== undefined && recipientHash(r.originalRecipient) === route.ref.recipientHash);
  // A return path names one recipient's copy: only that recipient's failure is about this message.
  const mine = failed.find(matches);
  if (!mine) return { kind: 'bounce', outcome: 'dropped', reason: 'recipient-mismatch', ...ids, events: [] };
  const address = matches({ ...mine, originalRecipient: undefined }) ? mine.address : mine.originalRecipient!;
  const { category, bounceClass } = ctx.classify({ ...(mine.code !== undefined ? { code: mine.code } : {}), enhanced: mine.status, text: mine.diagnostic });
  const event: EventInput = {
    type: 'bounced',
    ...ids,
    recipients: [address],
    domain: domainOf(address),
    via: 'dsn',
    category,
    bounceClass,
    smtp: { ...(mine.code !== undefined ? { code: mine.code } : {}), enhanced: mine.status, message: mine.diagnostic, ...(mine.remoteMta ? { host: mine.remoteMta } : {}) },
    ...context(refOf(bounce.originalHeaders, ctx.keyring, route.ref)),
  };
  return { kind: 'bounce', outcome: 'published', reason: bounce.kind, ...ids, events: [event] };
}

/** Who complained: the verified X-Postline-Ref, else a signed return path plus an address whose hash it carries. */
function complainant(arf: ParsedArf, keyring: FeedbackKeyring, fallback?: FeedbackRef): FeedbackRef | 'unverified' | 'recipient-unknown' {
  const ref = refOf(arf.originalHeaders, keyring);
  if (ref) return ref;
  const returnPath = arf.originalHeaders?.returnPath ?? arf.originalMailFrom ?? '';
  const token = tokenOfLocalPart(returnPath.slice(0, Math.max(0, returnPath.lastIndexOf('@'))), RETURN_PATH_PREFIX);
  const rp = (token ? keyring.verify(token, 'return-path') : undefined) ?? fallback;
  if (!rp) return 'unverified';
  const candidates = [arf.originalRecipient, ...(arf.originalHeaders?.to ?? '').split(',').map((a) => bareAddress(a))].filter((a): a is string => !!a);
  const recipient = candidates.find((a) => recipientHash(a) === rp.recipientHash);
  return recipient ? { ...rp, recipient } : 'recipient-unknown';
}

/** An ARF report's Source-IP as an event's `source`: an IP address only (IPv4-mapped IPv6 as IPv4), else nothing. */
export function sourceOf(sourceIp: string | undefined): { source: string } | Record<string, never> {
  const ip = (sourceIp ?? '').trim().replace(/^\[(.*)\]$/, '$1').toLowerCase();
  const v4 = ip.startsWith('::ffff:') && net.isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
  return net.isIP(v4) ? { source: v4 } : {};
}

function complaintVerdict(arf: ParsedArf, ctx: DecideContext, fallback?: FeedbackRef): Verdict {
  if (NOT_COMPLAINTS.has(arf.feedbackType)) return { kind: 'complaint', outcome: 'ignored', reason: `feedback-type-${arf.feedbackType}`, events: [] };
  const who = complainant(arf, ctx.keyring, fallback);
  if (typeof who === 'string') return { kind: 'complaint', outcome: 'dropped', reason: who, events: [] };
  const ids = { messageId: who.messageId, tenant: who.tenant };
  const event: EventInput = {
    type: 'complained',
    ...ids,
    recipients: [who.recipient],
    domain: domainOf(who.recipient),
    via: 'arf',
    category: arf.feedbackType,
    ...(arf.userAgent ? { reason: `reported by ${arf.userAgent.slice(0, 200)}` } : {}),
    ...context(who),
    // The address that delivered the message (RFC 5965 Source-IP): our source address, whose
    // complaint rate the dispatchers count (auto-pause of the address and its pools).
    ...sourceOf(arf.sourceIp),
  };
  return { kind: 'complaint', outcome: 'published', reason: 'arf', ...ids, events: [event] };
}

/**
 * The verdict on one received message for one of its accepted recipients. `parts` is undefined
 * when the message could not be split at all (garbage).
 */
export function decide(parts: ReportParts | undefined, route: InboundRoute, ctx: DecideContext): Verdict {
  if (route.kind === 'unsubscribe') {
    const { ref } = route;
    const event: EventInput = { type: 'unsubscribed', messageId: ref.messageId, tenant: ref.tenant, recipients: [ref.recipient], domain: domainOf(ref.recipient), via: 'mailto', ...context(ref) };
    return { kind: 'unsubscribe', outcome: 'published', reason: 'mailto', messageId: ref.messageId, tenant: ref.tenant, events: [event] };
  }
  const ids = route.kind === 'bounce' ? { messageId: route.ref.messageId, tenant: route.ref.tenant } : {};
  if (!parts) return { kind: route.kind, outcome: 'dropped', reason: 'unparsable', ...ids, events: [] };
  // Some feedback loops send complaints to the return path: an ARF report there is a complaint.
  const arf = arfOf(parts);
  if (arf) return complaintVerdict(arf, ctx, route.kind === 'bounce' ? route.ref : undefined);
  if (route.kind === 'complaint') return { kind: 'complaint', outcome: 'dropped', reason: 'not-arf', events: [] };
  return bounceVerdict(parts, route, ctx);
}

/** The events of several verdicts, without repeats (the same complaint sent to fbl@ and abuse@). */
export function uniqueEvents(verdicts: readonly Verdict[]): EventInput[] {
  const seen = new Set<string>();
  const out: EventInput[] = [];
  for (const e of verdicts.flatMap((v) => v.events)) {
    const key = `${e.type}\u0000${e.messageId}\u0000${e.tenant}\u0000${e.recipients?.join(',')}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push(e);
    }
  }
  return out;
}
