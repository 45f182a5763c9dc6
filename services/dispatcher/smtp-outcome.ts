/**
 * What an SMTP attempt means for each recipient: `sent`, `bounced` (a permanent refusal of the
 * message or recipient; never retried), `deferred` (anything that may work later: 4xx, timeouts,
 * refused or broken connections, and every protocol error of the other side — a reply without a
 * code, a code that makes no sense for the command, a reset mid-DATA; goes to the retry path) or
 * `failed` (the record itself can never be sent: nodemailer refused it before the server said
 * anything, e.g. an envelope address SMTP cannot carry; parked on email.dead). Only our own side
 * can make a record `failed`: whatever the server answered, however oddly, is judged as a reply or
 * deferred. Pure: the rules are tables and the tests are tables.
 */
import type { NodemailerError } from 'nodemailer/lib/errors';
import { classifyBounce, type BounceClass, type BounceVerdict } from '../../shared/bounces/classify.js';
import type { SMTPConnectionSendInfo } from 'nodemailer/lib/smtp-connection';

export type OutcomeKind = 'sent' | 'bounced' | 'deferred' | 'failed';

/** A parsed SMTP reply: `550 5.1.1 No such user` → { code: 550, enhanced: '5.1.1', text: 'No such user' }. */
export interface SmtpReply {
  code?: number;
  enhanced?: string;
  text: string;
}

/** The verdict for some recipients of one attempt. */
export interface RecipientOutcome {
  kind: OutcomeKind;
  recipients: string[];
  /** Stable code: SMTP_OK, SMTP_PERMANENT, SMTP_TRANSIENT, SMTP_TIMEOUT, SMTP_CONNECTION, ... */
  code: string;
  /** Human-readable why, with the server reply when there was one. */
  reason: string;
  reply?: SmtpReply;
  /**
   * `bounced` and `deferred`: what the failure means (shared/bounces: the rule table for a reply;
   * tls, dns or other for a failure without one; `dns` for a domain that receives no mail).
   */
  category?: string;
  /** `bounced` and `deferred`: recipient, infrastructure or content (see shared/bounces/classify.ts). */
  bounceClass?: BounceClass;
}

/** The shape of errors from nodemailer's SMTP connection and from the fleet. */
export type SmtpFailure = Pick<NodemailerError, 'message' | 'code' | 'responseCode' | 'response' | 'command' | 'timeoutType' | 'originalCode' | 'recipient'> & {
  rejectedErrors?: SmtpFailure[];
};

/** Parses the last line of a (possibly multi-line) reply. */
export function parseSmtpReply(response: string | undefined | false | null): SmtpReply {
  const lines = String(response ?? '').trim().split(/\r?\n/);
  const last = lines[lines.length - 1] ?? '';
  const m = /^(\d{3})[ -]?(?:([245]\.\d{1,3}\.\d{1,3})\s+)?(.*)$/.exec(last);
  if (!m) return { text: last };
  return { code: Number(m[1]), ...(m[2] ? { enhanced: m[2] } : {}), text: m[3] };
}

/** Commands whose permanent refusal is about this message or recipient, not about our session. */
const MESSAGE_COMMANDS = new Set(['MAIL FROM', 'RCPT TO', 'DATA']);

/**
 * Codes of failures that never reached a server verdict and cannot succeed by retrying this
 * record — when nodemailer raised them itself (see `isLocalRefusal`).
 */
const UNSENDABLE_CODES: Record<string, string> = {
  EENVELOPE: 'INVALID_ENVELOPE',
  EMESSAGE: 'MESSAGE_REFUSED_LOCALLY',
  EREQUIRETLS: 'REQUIRETLS_UNAVAILABLE',
};

/** Transient failures without a reply, by nodemailer code (timeouts are refined by timeoutType). */
const TRANSIENT_CODES: Record<string, string> = {
  ECONNECTION: 'SMTP_CONNECTION',
  ESOCKET: 'SMTP_CONNECTION',
  EDNS: 'SMTP_DNS',
  ETLS: 'SMTP_TLS',
  EPROTOCOL: 'SMTP_PROTOCOL',
  EAUTH: 'SMTP_AUTH',
  ENOAUTH: 'SMTP_AUTH',
  ETIMEDOUT: 'SMTP_TIMEOUT',
  // Every host of the route had its circuit breaker open: not attempted, retried later.
  BREAKER_OPEN: 'SMTP_BREAKER_OPEN',
};

const TIMEOUTS: Record<string, string> = {
  CONNECT_TIMEOUT: 'SMTP_CONNECT_TIMEOUT',
  GREETING_TIMEOUT: 'SMTP_GREETING_TIMEOUT',
  UPGRADE_TIMEOUT: 'SMTP_TLS_TIMEOUT',
  SOCKET_TIMEOUT: 'SMTP_TIMEOUT',
};

/**
 * Commands nodemailer names when it refuses on its own, before or instead of talking to the
 * server: 'API' (envelope and message checks) and 'MAIL FROM' for the checks against what the
 * server advertised (SIZE, REQUIRETLS).
 */
const LOCAL_COMMANDS = new Set(['API', 'MAIL FROM']);

/** nodemailer refused the record itself: no reply from the server is involved. */
function isLocalRefusal(err: SmtpFailure): boolean {
  return !err.response && (err.command === undefined || LOCAL_COMMANDS.has(err.command));
}

/**
 * The server answered, but not with an SMTP reply that means anything here: a line without a
 * code, or a code outside 4yz/5yz for a command that failed (e.g. 354 to RCPT, 250 to DATA's
 * command, 999). The session is in an unknown state: the connection must not be reused.
 */
export function isProtocolViolation(err: SmtpFailure): boolean {
  if (err.responseCode) return err.responseCode < 400 || err.responseCode >= 600;
  return typeof err.response === 'string' && err.response.trim() !== '' && err.command !== undefined && !LOCAL_COMMANDS.has(err.command);
}

function describe(err: SmtpFailure): string {
  const detail = err.originalCode ? ` (${err.originalCode})` : '';
  return `${err.message}${detail}`.slice(0, 500);
}

/** The verdict for one failure (for every recipient it covers). */
export function classifyFailure(err: SmtpFailure): Omit<RecipientOutcome, 'recipients'> {
  if (isProtocolViolation(err)) {
    // Garbage or a nonsensical code from the other side: its fault, and maybe a passing one.
    const reply = parseSmtpReply(err.response);
    return { kind: 'deferred', code: 'SMTP_PROTOCOL', reason: `unexpected reply${err.command ? ` to ${err.command}` : ''}: ${describe(err)}`.slice(0, 500), reply, ...OTHER };
  }
  if (err.responseCode) {
    const reply = parseSmtpReply(err.response);
    const text = `${reply.code ?? err.responseCode}${reply.enhanced ? ` ${reply.enhanced}` : ''} ${reply.text}`.trim();
    // RFC 5321: 5yz is a permanent refusal, except 503 (bad sequence: our session, not the message).
    const permanent = err.responseCode >= 500 && err.responseCode < 600 && err.responseCode !== 503;
    // A 5xx to EHLO, AUTH or the greeting refuses us (configuration, reputation), not the recipient.
    const aboutMessage = err.command !== undefined && MESSAGE_COMMANDS.has(err.command);
    const verdict = classifyBounce({ code: reply.code ?? err.responseCode, enhanced: reply.enhanced, text: reply.text });
    if (permanent && aboutMessage) return { kind: 'bounced', code: 'SMTP_PERMANENT', reason: text, reply, ...verdict };
    const code = err.responseCode === 421 ? 'SMTP_SERVICE_UNAVAILABLE' : permanent ? 'SMTP_SESSION_REFUSED' : 'SMTP_TRANSIENT';
    return { kind: 'deferred', code, reason: `${text}${err.command ? ` (${err.command})` : ''}`, reply, ...verdict };
  }
  const code = err.code ?? '';
  if (UNSENDABLE_CODES[code]) {
    if (isLocalRefusal(err)) return { kind: 'failed', code: UNSENDABLE_CODES[code], reason: describe(err) };
    // Failed at a server command without any reply (an empty line): the server's fault.
    return { kind: 'deferred', code: 'SMTP_PROTOCOL', reason: `no reply${err.command ? ` to ${err.command}` : ''}: ${describe(err)}`.slice(0, 500), ...OTHER };
  }
  if (code === 'ETIMEDOUT') {
    const timeout = TIMEOUTS[err.timeoutType ?? ''] ?? 'SMTP_TIMEOUT';
    return { kind: 'deferred', code: timeout, reason: describe(err), ...(timeout === 'SMTP_TLS_TIMEOUT' ? TLS : OTHER) };
  }
  // Anything unknown is retried: dropping a message is never the safe default.
  const known = TRANSIENT_CODES[code] ?? (code || 'SMTP_UNKNOWN');
  return { kind: 'deferred', code: known, reason: describe(err), ...(TLS_CODES.has(known) ? TLS : known === 'SMTP_DNS' ? DNS : OTHER) };
}

/** Failures of TLS without a reply: the handshake, or a route requiring TLS at a host that offers no STARTTLS (fleet-connection.ts). */
const TLS_CODES = new Set(['SMTP_TLS', 'TLS_REQUIRED']);
const OTHER: BounceVerdict = { category: 'other', bounceClass: 'infrastructure' };
const TLS: BounceVerdict = { category: 'tls', bounceClass: 'infrastructure' };
const DNS: BounceVerdict = { category: 'dns', bounceClass: 'infrastructure' };

/**
 * The category and class of a delivery refused before any SMTP (mx-router, shaper): a domain
 * that receives no mail (`dns`, bounced) is the recipient's address problem; a DNS lookup that
 * failed for now is `dns` of the infrastructure; no MX host that an MTA-STS policy allows is
 * `tls`; our own shaper holding the message back is `throttled`; anything else (no relay, pool
 * paused) is `other`.
 */
export function refusalVerdict(kind: OutcomeKind, code: string, category: string | undefined): BounceVerdict | undefined {
  if (kind !== 'bounced' && kind !== 'deferred') return undefined;
  if (category === 'dns' || code.startsWith('DNS_')) return { category: 'dns', bounceClass: kind === 'bounced' ? 'recipient' : 'infrastructure' };
  if (code.startsWith('MTA_STS_')) return TLS;
  if (code === 'SHAPING_DEFERRED') return { category: 'throttled', bounceClass: 'infrastructure' };
  return OTHER;
}

/** True when the error means the connection died under the message (worth one more try elsewhere). */
export function isBrokenConnection(err: SmtpFailure): boolean {
  return !err.responseCode && (err.code === 'ECONNECTION' || err.code === 'ESOCKET');
}

function merge(into: RecipientOutcome[], outcome: RecipientOutcome): void {
  const same = into.find((o) => o.kind === outcome.kind && o.code === outcome.code && o.reason === outcome.reason);
  if (same) same.recipients.push(...outcome.recipients);
  else into.push({ ...outcome, recipients: [...outcome.recipients] });
}

function perRecipient(into: RecipientOutcome[], rejected: SmtpFailure[]): void {
  for (const r of rejected) {
    if (r.recipient) merge(into, { ...classifyFailure(r), recipients: [r.recipient] });
  }
}

/**
 * Splits one attempt into outcomes per recipient: a 250 for some recipients and a 550 or 451 for
 * others gives `sent` for the first, `bounced` or `deferred` for the rest. Every recipient of
 * `to` ends in exactly one outcome.
 */
export function outcomesOf(to: string[], result: { info: SMTPConnectionSendInfo } | { error: SmtpFailure }): RecipientOutcome[] {
  const out: RecipientOutcome[] = [];
  if ('info' in result) {
    const { info } = result;
    const reply = parseSmtpReply(info.response);
    if (info.accepted.length > 0) merge(out, { kind: 'sent', recipients: info.accepted, code: 'SMTP_OK', reason: info.response, reply });
    perRecipient(out, info.rejectedErrors ?? []);
  } else if (result.error.rejectedErrors?.length) {
    perRecipient(out, result.error.rejectedErrors);
  }
  const covered = new Set(out.flatMap((o) => o.recipients));
  const rest = to.filter((r) => !covered.has(r));
  if (rest.length > 0) {
    // Recipients the result does not name share the error's verdict (or are deferred when the
    // server reported success without naming them, which a conforming server never does).
    const verdict = 'error' in result ? classifyFailure(result.error) : { kind: 'deferred' as const, code: 'SMTP_UNCONFIRMED', reason: 'recipient missing from the server reply', ...OTHER };
    merge(out, { ...verdict, recipients: rest });
  }
  return out;
}
