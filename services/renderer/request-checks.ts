/**
 * What the EmailRequested schema cannot say alone, checked before rendering: usable
 * addresses, at least one recipient, a body or a template (not both), base64 attachments,
 * and custom headers that do not take over headers the renderer owns. Anyone may produce to
 * `email.requested`, so the renderer cannot rely on the ingest API having checked this.
 * Pure; returns every issue with the field's path.
 */
import type { EmailRequested } from '../../shared/contracts/email-requested.js';
import { groupByDomain, parseEnvelopeAddress, type DomainGroup, type EnvelopeAddress } from './recipient-domains.js';

export interface Issue {
  path: string;
  message: string;
}

export interface EnvelopePlan {
  from: EnvelopeAddress;
  /** One entry per recipient domain, each a dispatch record. */
  groups: DomainGroup[];
  /** Every envelope recipient (to, cc, bcc), deduplicated, in order. */
  recipients: string[];
}

/** "At most 50 recipients in all" (to + cc + bcc). */
export const MAX_RECIPIENTS = 50;

/**
 * Headers the renderer sets itself (addresses, identity, MIME structure) or that only relays
 * add. Letting a record set them would forge identity or break the MIME tree; `Content-*`
 * is reserved as a whole.
 */
const RESERVED_HEADERS = new Set([
  'from',
  'sender',
  'to',
  'cc',
  'bcc',
  'reply-to',
  'subject',
  'date',
  'message-id',
  'mime-version',
  'return-path',
  'received',
  'dkim-signature',
  'delivered-to',
  // Feedback: the renderer signs one per recipient copy (feedback-copies.ts).
  'x-postline-ref',
]);

const HEADER_NAME = /^[A-Za-z0-9-]{1,76}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function isReservedHeader(name: string): boolean {
  const n = name.toLowerCase();
  return RESERVED_HEADERS.has(n) || n.startsWith('content-');
}

/** True for padded standard base64, line breaks allowed (MIME writers wrap at 76). */
export function isBase64(content: string): boolean {
  return BASE64.test(content.replace(/[\r\n]/g, ''));
}

function contentIssues(req: EmailRequested): Issue[] {
  const issues: Issue[] = [];
  if (req.template && (req.html !== undefined || req.text !== undefined)) {
    issues.push({ path: 'template', message: 'a template cannot be combined with html or text' });
  }
  if (!req.template && req.html === undefined && req.text === undefined) {
    issues.push({ path: 'html', message: 'one of html, text or template is required' });
  }
  for (const name of Object.keys(req.headers ?? {})) {
    // The contract's key pattern is not enforced by TypeBox for Record keys; check it here.
    if (!HEADER_NAME.test(name)) issues.push({ path: `headers.${JSON.stringify(name)}`, message: 'header names are 1-76 letters, digits or dashes' });
    else if (isReservedHeader(name)) issues.push({ path: `headers.${name}`, message: 'reserved header; the renderer sets it' });
  }
  if (req.unsubscribe === true && Object.keys(req.headers ?? {}).some((h) => h.toLowerCase() === 'list-unsubscribe')) {
    issues.push({ path: 'unsubscribe', message: 'unsubscribe: true (the renderer adds List-Unsubscribe) contradicts a List-Unsubscribe header of the request' });
  }
  (req.attachments ?? []).forEach((a, i) => {
    if (!isBase64(a.content)) issues.push({ path: `attachments.${i}.content`, message: 'not valid base64' });
  });
  return issues;
}

function envelopeAddresses(req: EmailRequested, issues: Issue[]): EnvelopeAddress[] {
  const out: EnvelopeAddress[] = [];
  for (const field of ['to', 'cc', 'bcc'] as const) {
    (req[field] ?? []).forEach((a, i) => {
      const parsed = parseEnvelopeAddress(a.email);
      if (parsed) out.push(parsed);
      else issues.push({ path: `${field}.${i}.email`, message: `not a valid address: ${JSON.stringify(a.email)}` });
    });
  }
  (req.replyTo ?? []).forEach((a, i) => {
    if (!parseEnvelopeAddress(a.email)) issues.push({ path: `replyTo.${i}.email`, message: `not a valid address: ${JSON.stringify(a.email)}` });
  });
  return out;
}

/** Checks a decoded request; `envelope` is set exactly when there are no issues. */
export function checkRequest(req: EmailRequested): { issues: Issue[]; envelope?: EnvelopePlan } {
  const issues = contentIssues(req);
  const from = parseEnvelopeAddress(req.from.email);
  if (!from) issues.push({ path: 'from.email', message: `not a valid address: ${JSON.stringify(req.from.email)}` });
  const count = req.to.length + (req.cc?.length ?? 0) + (req.bcc?.length ?? 0);
  if (count === 0) issues.push({ path: 'to', message: 'at least one recipient (to, cc or bcc) is required' });
  if (count > MAX_RECIPIENTS) issues.push({ path: 'to', message: `at most ${MAX_RECIPIENTS} recipients in all (got ${count})` });
  const addresses = envelopeAddresses(req, issues);
  if (issues.length > 0 || !from) return { issues };
  const groups = groupByDomain(addresses);
  return { issues, envelope: { from, groups, recipients: groups.flatMap((g) => g.recipients) } };
}
