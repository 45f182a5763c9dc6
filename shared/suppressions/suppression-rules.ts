/**
 * Which events put an address on the suppression list, and which entry wins when one is
 * already there. Pure: the feeder (services/suppressions/feeder.ts) and the API call these.
 *
 * - `bounced` with `bounceClass: 'recipient'` (our own SMTP session or an asynchronous DSN /
 *   provider webhook): a hard bounce, until removed — except soft categories (a full mailbox
 *   empties again), which expire after `softBounceDays`.
 * - `complained`: a complaint (tenant-wide), until removed.
 * - `unsubscribed`: an unsubscribe, scoped to the event's `listId` when it named one.
 * - Nothing else: infrastructure and content bounces say nothing about the address, `expired`
 *   and `deferred` are not bounces, `failed` never reached a server.
 */
import { SUPPRESSION_VERSION, type Suppression, type SuppressionReason } from '../contracts/suppression.js';
import type { EmailEvent } from '../contracts/email-event.js';

/**
 * Recipient-class categories that pass: a full mailbox (5.2.2 / 4.2.2 repeated) is emptied,
 * so it suppresses for days, not for ever.
 */
export const SOFT_BOUNCE_CATEGORIES: ReadonlySet<string> = new Set(['mailbox-full']);

export interface SuppressionRuleOptions {
  softBounceDays: number;
  now: Date;
}

const ADDRESS = /^[^\s@]+@[^\s@]+$/;

/** One record per recipient of the event that suppresses; empty for events that do not. */
export function suppressionsFor(event: EmailEvent, opts: SuppressionRuleOptions): Suppression[] {
  const kind = reasonOf(event);
  if (!kind) return [];
  const list = kind.reason === 'unsubscribe' && event.listId ? { list: event.listId } : {};
  const expiresAt = kind.soft ? { expiresAt: new Date(opts.now.getTime() + opts.softBounceDays * 86_400_000).toISOString() } : {};
  const out = new Map<string, Suppression>();
  for (const r of event.recipients ?? []) {
    const address = r.trim().toLowerCase();
    if (!ADDRESS.test(address) || address.length > 320 || out.has(address)) continue;
    out.set(address, {
      schemaVersion: SUPPRESSION_VERSION,
      tenant: event.tenant,
      address,
      ...list,
      reason: kind.reason,
      ...(event.category ? { category: event.category.slice(0, 64) } : {}),
      cause: { eventId: event.eventId, messageId: event.messageId, type: event.type, ...(event.via ? { via: event.via } : {}) },
      createdAt: opts.now.toISOString(),
      ...expiresAt,
    });
  }
  return [...out.values()];
}

/** The suppression of a single-recipient event (the first recipient's otherwise); undefined when it does not suppress. */
export function suppressionFor(event: EmailEvent, opts: SuppressionRuleOptions): Suppression | undefined {
  return suppressionsFor(event, opts)[0];
}

function reasonOf(event: EmailEvent): { reason: SuppressionReason; soft: boolean } | undefined {
  switch (event.type) {
    case 'bounced':
      if (event.bounceClass !== 'recipient') return undefined;
      return SOFT_BOUNCE_CATEGORIES.has(event.category ?? '') ? { reason: 'soft-bounce', soft: true } : { reason: 'hard-bounce', soft: false };
    case 'complained':
      return { reason: 'complaint', soft: false };
    case 'unsubscribed':
      return { reason: 'unsubscribe', soft: false };
    default:
      return undefined;
  }
}

/**
 * How strong a reason is: a new entry never replaces a live one that is stronger (an
 * unsubscribe does not turn a complaint into an unsubscribe; a soft bounce never shortens a
 * hard bounce to days).
 */
export const REASON_RANK: Readonly<Record<SuppressionReason, number>> = {
  'soft-bounce': 1,
  unsubscribe: 2,
  manual: 3,
  'hard-bounce': 4,
  complaint: 5,
};

export const REASON_BY_RANK: readonly SuppressionReason[] = ['manual', 'soft-bounce', 'unsubscribe', 'manual', 'hard-bounce', 'complaint'];

/** What decides a replacement: the reason and the expiry (ms since the epoch; undefined: none). */
export interface SuppressionStrength {
  reason: SuppressionReason;
  expiresAtMs?: number;
}

/**
 * Whether `next` should be written over `existing` (absent or expired: always). A stronger or
 * equally strong permanent entry stays; a soft bounce again extends a soft bounce's expiry.
 */
export function replaces(existing: SuppressionStrength | undefined, next: SuppressionStrength, nowMs: number): boolean {
  if (!existing || (existing.expiresAtMs !== undefined && existing.expiresAtMs <= nowMs)) return true;
  const a = REASON_RANK[existing.reason];
  const b = REASON_RANK[next.reason];
  if (b !== a) return b > a;
  if (existing.expiresAtMs === undefined) return false;
  return next.expiresAtMs === undefined || next.expiresAtMs > existing.expiresAtMs;
}
