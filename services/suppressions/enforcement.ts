/**
 * Enforcement before any SMTP (the dispatcher): which recipients of a dispatch record the
 * suppression list holds back, and the `suppressed` event each group of them gets (one per
 * reason and scope, with a deterministic id so a repeat of the record repeats the same event).
 */
import type { EmailReadyForDispatch } from '../../shared/contracts/email-ready-for-dispatch.js';
import type { SuppressionReason } from '../../shared/contracts/suppression.js';
import type { EventInput } from '../../shared/events.js';
import type { SuppressionHit } from '../../shared/suppressions/suppression-index.js';

/** What enforcement needs of the index. */
export interface SuppressionCheck {
  isSuppressed(tenant: string, address: string, list: string | undefined, nowMs: number): SuppressionHit | undefined;
}

export interface HeldRecipients {
  reason: SuppressionReason;
  /** The list whose entry matched; absent for a tenant-wide entry. */
  list?: string;
  recipients: string[];
}

/** Splits `to` into the recipients to send to and the groups held back (by reason and scope). */
export function splitSuppressed(check: SuppressionCheck, msg: Pick<EmailReadyForDispatch, 'tenant' | 'listId'>, to: string[], nowMs: number): { send: string[]; held: HeldRecipients[] } {
  const send: string[] = [];
  const held = new Map<string, HeldRecipients>();
  for (const r of to) {
    const hit = check.isSuppressed(msg.tenant, r, msg.listId, nowMs);
    if (!hit) {
      send.push(r);
      continue;
    }
    const k = `${hit.reason}\u0000${hit.list ?? ''}`;
    const group = held.get(k) ?? { reason: hit.reason, ...(hit.list ? { list: hit.list } : {}), recipients: [] };
    group.recipients.push(r);
    held.set(k, group);
  }
  return { send, held: [...held.values()] };
}

/** The `suppressed` event of one held group: `category` is the suppression's reason. */
export function suppressedEventInput(msg: EmailReadyForDispatch, group: HeldRecipients): EventInput & { type: 'suppressed' } {
  return {
    type: 'suppressed',
    messageId: msg.messageId,
    tenant: msg.tenant,
    priority: msg.priority,
    domain: msg.domain,
    recipients: group.recipients,
    acceptedAt: msg.acceptedAt,
    attempt: msg.attempt,
    category: group.reason,
    reason: group.list ? `suppressed for list ${group.list}: ${group.reason}` : `suppressed: ${group.reason}`,
    ...(msg.listId ? { listId: msg.listId } : {}),
    ...(msg.fromDomain ? { fromDomain: msg.fromDomain } : {}),
    ...(msg.pool ? { pool: msg.pool } : {}),
    ...(msg.tags ? { tags: msg.tags } : {}),
  };
}
