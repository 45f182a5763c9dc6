/**
 * Turns a send request's body (already of the right shape) into the `EmailRequested` record
 * that goes to Kafka, checking what a shape cannot: addresses, recipient count, content,
 * allowed headers, header injection, attachment encoding and sizes. Pure: the caller supplies
 * the tenant, message id and time. Every problem is reported at once, naming its field.
 */
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { EMAIL_REQUESTED_VERSION, EmailRequestedContract, type Address, type EmailRequested } from '../../shared/contracts/email-requested.js';
import { CONTROL_MESSAGE, hasControlChars, parseAddress, type AddressInput } from './addresses.js';
import { BatchItemSchema, MAX_RECIPIENTS, shapeIssues, type EmailBody } from './email-body-schema.js';
import { RequestRejected, type FieldIssue } from '../../shared/http/errors.js';
import { TEMPLATE_DATA_LIMITS, jsonShapeProblem } from '../../shared/json-limits.js';

export interface NormalizeLimits {
  /** Largest attachment, decoded. */
  maxAttachmentBytes: number;
  /** Largest total of one message's attachments, decoded. */
  maxAttachmentsTotalBytes: number;
  /** Largest encoded record. */
  maxMessageBytes: number;
  /** Scheduled send (`sendAt`): the latest time accepted and what counts as "now" (default: sendAt refused). */
  schedule?: { maxAheadMs: number; immediateWithinMs: number };
}

export interface RequestIds {
  tenant: string;
  messageId: string;
  acceptedAt: string;
  idempotencyKey?: string;
}

/** Headers a caller may set besides X-*: threading, list management and auto-reply hints. */
export const ALLOWED_HEADERS: ReadonlySet<string> = new Set([
  'list-unsubscribe',
  'list-unsubscribe-post',
  'in-reply-to',
  'references',
  'precedence',
  'auto-submitted',
]);

/** Headers the renderer owns although they match X-*: a caller setting them could pass off another message's token. */
export const RENDERER_HEADERS: ReadonlySet<string> = new Set(['x-postline-ref']);

const HEADER_NAME = /^[A-Za-z0-9-]{1,76}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const MIME_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*(?:\s*;.*)?$/;

/** A record ready to produce: the validated contract object and its encoded value. */
export interface Normalized {
  record: EmailRequested;
  value: Buffer;
}

/** Collects issues; each carries the status it calls for (400, or 413 for sizes). */
export class Issues {
  readonly list: Array<FieldIssue & { status: 400 | 413 }> = [];
  add(field: string, message: string, status: 400 | 413 = 400): void {
    this.list.push({ field, message, status });
  }
  /** True when an issue names one of `fields` or something inside them. */
  any(fields: string[]): boolean {
    return this.list.some((i) => fields.some((f) => i.field === f || i.field.startsWith(`${f}.`)));
  }
  text(field: string, value: string | undefined): void {
    if (value !== undefined && hasControlChars(value)) this.add(field, CONTROL_MESSAGE);
  }
  throwIfAny(): void {
    if (this.list.length === 0) return;
    const fields = this.list.map(({ field, message }) => ({ field, message }));
    if (this.list.some((i) => i.status === 400)) throw new RequestRejected('VALIDATION_FAILED', 'the request is invalid', fields);
    throw new RequestRejected('PAYLOAD_TOO_LARGE', 'the message is too large', fields);
  }
}

const batchItem = TypeCompiler.Compile(BatchItemSchema);

/** Shape check of one batch item (the single-message route gets it from its route schema). */
export function checkBatchItemShape(item: unknown): void {
  if (batchItem.Check(item)) return;
  const fields = shapeIssues(batchItem, item).map((i) => ({ field: i.path || '(item)', message: i.message }));
  throw new RequestRejected('VALIDATION_FAILED', 'the message is invalid', fields);
}

/** Builds the EmailRequested record; throws RequestRejected (400 or 413) naming every bad field. */
export function normalizeEmail(body: EmailBody, ids: RequestIds, limits: NormalizeLimits): Normalized {
  const issues = new Issues();
  const from = addresses(issues, 'from', body.from)[0];
  const to = addresses(issues, 'to', body.to);
  const cc = addresses(issues, 'cc', body.cc);
  const bcc = addresses(issues, 'bcc', body.bcc);
  const replyTo = addresses(issues, 'replyTo', body.replyTo);
  const recipients = to.length + cc.length + bcc.length;
  // An empty list after a bad address is the bad address's fault, already reported.
  if (recipients === 0 && !issues.any(['to', 'cc', 'bcc'])) issues.add('to', 'at least one recipient (to, cc or bcc) is required');
  if (recipients > MAX_RECIPIENTS) issues.add('to', `at most ${MAX_RECIPIENTS} recipients over to, cc and bcc (got ${recipients})`);
  checkContent(issues, body);
  const headers = checkHeaders(issues, body.headers);
  checkUnsubscribe(issues, body);
  const attachments = checkAttachments(issues, body.attachments, limits);
  body.tags?.forEach((t, i) => issues.text(`tags.${i}`, t));
  issues.text('pool', body.pool);
  const sendAt = checkSendAt(issues, body.sendAt, Date.parse(ids.acceptedAt), limits.schedule);
  issues.throwIfAny();

  const record: EmailRequested = {
    schemaVersion: EMAIL_REQUESTED_VERSION,
    messageId: ids.messageId,
    tenant: ids.tenant,
    acceptedAt: ids.acceptedAt,
    priority: body.priority ?? 'transactional',
    from,
    to,
    ...(cc.length > 0 ? { cc } : {}),
    ...(bcc.length > 0 ? { bcc } : {}),
    ...(replyTo.length > 0 ? { replyTo } : {}),
    ...(body.subject !== undefined ? { subject: body.subject } : {}),
    ...(body.html !== undefined ? { html: body.html } : {}),
    ...(body.text !== undefined ? { text: body.text } : {}),
    ...(body.template ? { template: body.template } : {}),
    ...(headers ? { headers } : {}),
    ...(attachments ? { attachments } : {}),
    ...(body.tags ? { tags: body.tags } : {}),
    ...(body.metadata ? { metadata: body.metadata } : {}),
    ...(body.pool !== undefined ? { pool: body.pool } : {}),
    ...(body.listId !== undefined ? { listId: body.listId } : {}),
    ...(body.unsubscribe !== undefined ? { unsubscribe: body.unsubscribe } : {}),
    ...(body.track ? { track: body.track } : {}),
    ...(ids.idempotencyKey !== undefined ? { idempotencyKey: ids.idempotencyKey } : {}),
    ...(sendAt !== undefined ? { sendAt } : {}),
  };
  // The contract is what every consumer enforces; checking it here keeps ingest from ever
  // producing a record the renderer would dead-letter.
  for (const i of EmailRequestedContract.check(record)) issues.add(i.path || '(body)', i.message);
  issues.throwIfAny();
  const value = EmailRequestedContract.encode(record);
  if (value.length > limits.maxMessageBytes) issues.add('(body)', `the encoded message is ${value.length} bytes; at most ${limits.maxMessageBytes}`, 413);
  issues.throwIfAny();
  return { record, value };
}

/** RFC 3339 date-time with a zone (Z or ±hh:mm): a time without one would be a guess. */
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})$/;

/**
 * The record's sendAt (UTC ISO) when the message is to be scheduled; undefined when it is sent
 * now (no sendAt, or one in the past or within `immediateWithinMs`).
 */
export function checkSendAt(issues: Issues, sendAt: string | undefined, now: number, schedule: NormalizeLimits['schedule']): string | undefined {
  if (sendAt === undefined) return undefined;
  const at = RFC3339.test(sendAt) ? Date.parse(sendAt) : Number.NaN;
  if (Number.isNaN(at)) {
    issues.add('sendAt', 'must be an RFC 3339 time with an offset, e.g. 2026-12-24T09:00:00+01:00 or 2026-12-24T08:00:00Z');
    return undefined;
  }
  if (!schedule) {
    issues.add('sendAt', 'scheduled send is not available here');
    return undefined;
  }
  if (at - now > schedule.maxAheadMs) {
    issues.add('sendAt', `at most ${Math.floor(schedule.maxAheadMs / 86_400_000)} days ahead (${new Date(now + schedule.maxAheadMs).toISOString()})`);
    return undefined;
  }
  return at - now <= schedule.immediateWithinMs ? undefined : new Date(at).toISOString();
}

function addresses(issues: Issues, field: string, input: AddressInput | AddressInput[] | undefined): Address[] {
  if (input === undefined) return [];
  const list = Array.isArray(input) ? input : [input];
  const out: Address[] = [];
  list.forEach((a, i) => {
    const r = parseAddress(a);
    if (r.ok) out.push(r.address);
    else issues.add(Array.isArray(input) ? `${field}.${i}` : field, r.message);
  });
  return out;
}

function checkContent(issues: Issues, body: EmailBody): void {
  issues.text('subject', body.subject);
  if (body.template) {
    issues.text('template.name', body.template.name);
    // Checked before anything walks the data (the fingerprint, the encoder): depth is bounded here.
    const shape = body.template.data === undefined ? undefined : jsonShapeProblem(body.template.data, TEMPLATE_DATA_LIMITS);
    if (shape) issues.add('template.data', `template data ${shape}`);
    if (body.html !== undefined || body.text !== undefined) issues.add('template', 'give either a template or html/text, not both');
    return;
  }
  if (body.html === undefined && body.text === undefined) issues.add('html', 'html or text (or a template) is required');
  if (body.subject === undefined) issues.add('subject', 'subject is required unless a template provides it');
}

function checkHeaders(issues: Issues, headers: Record<string, string> | undefined): Record<string, string> | undefined {
  if (!headers) return undefined;
  const seen = new Set<string>();
  for (const [name, value] of Object.entries(headers)) {
    const field = `headers.${name}`;
    const lower = name.toLowerCase();
    if (!HEADER_NAME.test(name)) issues.add(field, 'header names are letters, digits and "-" (at most 76)');
    else if (!lower.startsWith('x-') && !ALLOWED_HEADERS.has(lower)) issues.add(field, `only X-* headers and ${[...ALLOWED_HEADERS].join(', ')} may be set`);
    else if (RENDERER_HEADERS.has(lower)) issues.add(field, 'Postline sets this header itself');
    else if (seen.has(lower)) issues.add(field, 'header given twice (names are case-insensitive)');
    seen.add(lower);
    issues.text(field, value);
  }
  return Object.keys(headers).length > 0 ? headers : undefined;
}

/** `unsubscribe: true` asks Postline for List-Unsubscribe: a List-Unsubscribe of the caller's own would contradict it. */
function checkUnsubscribe(issues: Issues, body: EmailBody): void {
  const own = Object.keys(body.headers ?? {}).some((h) => h.toLowerCase() === 'list-unsubscribe');
  if (body.unsubscribe === true && own) issues.add('unsubscribe', 'give either unsubscribe: true (Postline adds List-Unsubscribe) or a List-Unsubscribe header of your own, not both');
}

function checkAttachments(issues: Issues, list: EmailBody['attachments'], limits: NormalizeLimits): EmailRequested['attachments'] {
  if (!list || list.length === 0) return undefined;
  let total = 0;
  const out = list.map((a, i) => {
    const field = `attachments.${i}`;
    issues.text(`${field}.filename`, a.filename);
    issues.text(`${field}.contentId`, a.contentId);
    if (a.contentType !== undefined && (hasControlChars(a.contentType) || !MIME_TYPE.test(a.contentType))) issues.add(`${field}.contentType`, 'must be a MIME type such as application/pdf');
    // Line-wrapped base64 is common (76-column MIME habit): accept it, store it unwrapped.
    const content = a.content.replace(/[\r\n\t ]+/g, '');
    if (!BASE64.test(content)) issues.add(`${field}.content`, 'must be base64');
    const size = (content.length / 4) * 3 - (content.endsWith('==') ? 2 : content.endsWith('=') ? 1 : 0);
    total += size;
    if (size > limits.maxAttachmentBytes) issues.add(`${field}.content`, `attachment is ${size} bytes; at most ${limits.maxAttachmentBytes}`, 413);
    return { ...a, content };
  });
  if (total > limits.maxAttachmentsTotalBytes) issues.add('attachments', `attachments total ${total} bytes; at most ${limits.maxAttachmentsTotalBytes}`, 413);
  return out;
}
