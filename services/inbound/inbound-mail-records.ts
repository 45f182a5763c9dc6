/**
 * The `InboundMail` records of one received message: one per tenant among its routed
 * recipients, each with only that tenant's recipients. Pure. A record's id is derived from the
 * tenant, its recipients and the message bytes, so a sender retrying the same message (after a
 * 451) produces the same id and webhook receivers can drop the repeat.
 */
import { createHash } from 'node:crypto';
import { INBOUND_MAIL_VERSION, type InboundMail } from '../../shared/contracts/inbound-mail.js';
import type { RoutedRecipient } from '../../shared/inbound-routes/inbound-route-book.js';
import type { ParsedInboundMail } from './inbound-mail-parser.js';
import type { AuthVerdicts } from './inbound-mail-auth.js';

export interface ReceivedMessage {
  /** sha256 of the raw message (hex). */
  digest: string;
  size: number;
  /** MAIL FROM ('' for a null sender). */
  envelopeFrom: string;
  remote: { ip: string; helo?: string };
  receivedAt: Date;
}

/** The recipients grouped by tenant, in the order they were given, each address once (case-insensitive). */
export function byTenant(recipients: readonly RoutedRecipient[]): Map<string, RoutedRecipient[]> {
  const groups = new Map<string, RoutedRecipient[]>();
  const seen = new Set<string>();
  for (const r of recipients) {
    const key = r.address.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    groups.set(r.tenant, [...(groups.get(r.tenant) ?? []), r]);
  }
  return groups;
}

export function inboundMailId(tenant: string, recipients: readonly string[], digest: string): string {
  const h = createHash('sha256').update(tenant).update('\0').update([...recipients].sort().join('\0')).update('\0').update(digest);
  return `in_${h.digest('base64url').slice(0, 32)}`;
}

/**
 * One record per tenant. `domain` is the route of the tenant's first recipient (a tenant with
 * recipients at two of its domains gets one record; `envelope.to` names them all).
 */
export function inboundMailRecords(recipients: readonly RoutedRecipient[], message: ReceivedMessage, parsed: ParsedInboundMail, auth: AuthVerdicts): InboundMail[] {
  return [...byTenant(recipients)].map(([tenant, mine]) => {
    const to = mine.map((r) => r.address);
    return {
      schemaVersion: INBOUND_MAIL_VERSION,
      id: inboundMailId(tenant, to, message.digest),
      tenant,
      domain: mine[0].domain,
      receivedAt: message.receivedAt.toISOString(),
      envelope: { from: message.envelopeFrom, to },
      remote: { ip: message.remote.ip, ...(message.remote.helo ? { helo: message.remote.helo } : {}) },
      ...parsed,
      auth: { ...auth },
      size: message.size,
    };
  });
}

/**
 * The record cut until its JSON is at most `maxBytes` (what `email.inbound` accepts): first every
 * attachment's content goes (metadata stays), then the HTML, then the text, each flagged in
 * `truncated`. Undefined when even the rest (headers, addresses) is larger.
 */
export function fitRecord(record: InboundMail, maxBytes: number, size: (r: InboundMail) => number): InboundMail | undefined {
  if (size(record) <= maxBytes) return record;
  const steps: Array<(r: InboundMail) => InboundMail> = [
    (r) => (r.attachments.some((a) => a.content !== undefined) ? { ...r, attachments: r.attachments.map(({ content: _content, ...meta }) => meta), truncated: { ...r.truncated, attachments: true } } : r),
    (r) => (r.html !== undefined ? { ...withoutKey(r, 'html'), truncated: { ...r.truncated, html: true } } : r),
    (r) => (r.text !== undefined ? { ...withoutKey(r, 'text'), truncated: { ...r.truncated, text: true } } : r),
  ];
  let current = record;
  for (const step of steps) {
    current = step(current);
    if (size(current) <= maxBytes) return current;
  }
  return undefined;
}

function withoutKey<K extends keyof InboundMail>(r: InboundMail, key: K): InboundMail {
  const copy = { ...r };
  delete copy[key];
  return copy;
}
