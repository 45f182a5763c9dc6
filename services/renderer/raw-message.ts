/**
 * A raw message as a client wrote it (the SMTP gateway's, or a foreign producer's raw-MIME
 * request) made ready to send, the same way on both sides: the gateway runs it before it
 * answers 250 (so a 250 means the renderer will accept the message), the renderer runs it again
 * on the record (anyone may produce to `email.requested`); running it twice changes nothing.
 *
 * - The header block is parsed with mailsplit's `Headers` (no hand-written header parser); the
 *   body is never touched, so the client's MIME tree and encodings stay byte for byte.
 * - From: exactly one header holding exactly one address, read as the send API reads `from`
 *   (parseAddress: ASCII dot-atom local part, IDN domain to IDNA ASCII).
 * - `X-Postline-*` headers are control headers (Priority, Tags, List-Id, Idempotency-Key are
 *   read; X-Postline-Ref is the renderer's own): all are removed, so none reaches a recipient
 *   and no client can pass off another message's token. Bcc and Return-Path are removed (blind
 *   recipients live only in the envelope; the receiving MTA writes Return-Path).
 * - Message-ID (from the message id, as for composed mail) and Date (`acceptedAt`) are added when
 *   missing, so rendering the record again yields the same bytes.
 * - 8-bit content: the dispatch record carries the MIME as text, so the message must be ASCII
 *   or UTF-8 (the dispatcher announces 8BITMIME for non-ASCII); another 8-bit charset must be
 *   sent quoted-printable or base64 (what every MIME library does by default). A header block
 *   that is not UTF-8 is refused alike.
 *
 * Pure. Every refusal is a RawMessageRejected (a PermanentError) with an SMTP reply.
 */
import { isUtf8 } from 'node:buffer';
import { Headers } from '@zone-eu/mailsplit';
import { PermanentError } from '../../shared/errors.js';
import { parseAddress } from '../ingest/addresses.js';
import { messageIdHeader } from './mime-message.js';

/** A raw message that cannot be sent as it is: permanent, with the SMTP reply the gateway gives. */
export class RawMessageRejected extends PermanentError {
  constructor(
    code: string,
    message: string,
    /** SMTP reply code and enhanced status for the gateway. */
    readonly smtp: { code: number; status: string },
  ) {
    super(code, message);
  }
}

/** What the client asked for in X-Postline-* headers, unchecked (the record's contract checks them). */
export interface ControlHeaders {
  priority?: string;
  tags?: string;
  listId?: string;
  idempotencyKey?: string;
}

export interface PreparedRaw {
  /** The message to send: control headers, Bcc and Return-Path removed, Message-ID and Date added when missing. */
  message: Buffer;
  /** The From header's address, domain in IDNA ASCII. */
  from: string;
  /** The From address's domain (IDNA ASCII, lower case). */
  fromDomain: string;
  control: ControlHeaders;
  /** The message has a List-Unsubscribe of its own (Postline then adds none). */
  ownListUnsubscribe: boolean;
}

const CONTROL_PREFIX = 'x-postline-';
const REMOVED = ['bcc', 'return-path'];

/** Where the header block ends: the index of the blank line's first byte and the body's start. */
function splitHead(raw: Buffer): { head: Buffer; body: Buffer } {
  const crlf = raw.indexOf('\r\n\r\n');
  const lf = raw.indexOf('\n\n');
  if (crlf >= 0 && (lf < 0 || crlf < lf)) return { head: raw.subarray(0, crlf + 2), body: raw.subarray(crlf + 4) };
  if (lf >= 0) return { head: raw.subarray(0, lf + 1), body: raw.subarray(lf + 2) };
  return { head: raw, body: Buffer.alloc(0) };
}

const rejected = (code: string, message: string, smtp = 554, status = '5.6.0') => new RawMessageRejected(code, message, { code: smtp, status });

/** A header line's value (mailsplit gives whole lines, UTF-8 decoded when valid), unfolded. */
function valueOf(line: string): string {
  return line
    .slice(line.indexOf(':') + 1)
    .replace(/\r?\n(?=[ \t])/g, '')
    .trim();
}

function readFrom(headers: Headers): { email: string; domain: string } {
  const lines = headers.get('from');
  if (lines.length === 0) throw rejected('RAW_NO_FROM', 'the message has no From header');
  if (lines.length > 1) throw rejected('RAW_FROM_INVALID', 'the message has more than one From header');
  const parsed = parseAddress(valueOf(lines[0]));
  if (!parsed.ok) throw rejected('RAW_FROM_INVALID', `From header: ${parsed.message}`);
  const email = parsed.address.email;
  return { email, domain: email.slice(email.lastIndexOf('@') + 1) };
}

function readControl(headers: Headers): ControlHeaders {
  const first = (name: string): string | undefined => {
    const v = headers.get(name)[0];
    return v === undefined ? undefined : valueOf(v);
  };
  const control: ControlHeaders = {};
  const priority = first('x-postline-priority');
  const tags = first('x-postline-tags');
  const listId = first('x-postline-list-id');
  const idempotencyKey = first('x-postline-idempotency-key');
  if (priority !== undefined) control.priority = priority.toLowerCase();
  if (tags !== undefined) control.tags = tags;
  if (listId !== undefined) control.listId = listId;
  if (idempotencyKey !== undefined) control.idempotencyKey = idempotencyKey;
  return control;
}

/** RFC 5322 date-time of `iso`, e.g. `Thu, 03 Dec 2026 18:40:00 +0000`. */
export function rfc5322Date(iso: string): string {
  return new Date(iso).toUTCString().replace(/GMT$/, '+0000');
}

/** Checks and normalises a raw message; throws RawMessageRejected. */
export function prepareRawMessage(raw: Buffer, ids: { messageId: string; acceptedAt: string }): PreparedRaw {
  if (raw.length === 0) throw rejected('RAW_EMPTY', 'the message is empty');
  const { head, body } = splitHead(raw);
  if (!isUtf8(head)) throw rejected('RAW_NOT_UTF8', 'the header block is neither ASCII nor UTF-8 (encode non-ASCII header text as RFC 2047 encoded words)');
  if (!isUtf8(body)) throw rejected('RAW_NOT_UTF8', 'the body has 8-bit bytes that are not UTF-8: send other charsets quoted-printable or base64');
  const headers = new Headers(head);
  const lines = headers.getList();
  // An mbox "From " line is not a header.
  headers.mbox = false;
  const from = readFrom(headers);
  const control = readControl(headers);
  const ownListUnsubscribe = headers.hasHeader('list-unsubscribe');
  for (const key of new Set(lines.map((l) => l.key))) {
    if (key.startsWith(CONTROL_PREFIX) || REMOVED.includes(key)) headers.remove(key);
  }
  if (!headers.hasHeader('message-id')) headers.add('Message-ID', messageIdHeader(ids.messageId, from.domain), Infinity);
  if (!headers.hasHeader('date')) headers.add('Date', rfc5322Date(ids.acceptedAt), Infinity);
  // Unchanged headers come back byte for byte (build() would too, but the body needs its blank line then).
  const message = headers.changed ? Buffer.concat([headers.build(), body]) : raw;
  return { message, from: from.email, fromDomain: from.domain, control, ownListUnsubscribe };
}
