/**
 * Reads a bounce: an RFC 3464 delivery status notification (multipart/report with a
 * message/delivery-status part), or one of the common non-standard shapes — Exim's
 * `X-Failed-Recipients` header with its text, and qmail's `<address>:` blocks. Pure: bytes in,
 * facts out; what a failed recipient means (category, class) is the classifier's business.
 */
import { bareAddress, fieldBlocks, headerBlock, originalHeadersOf, readReportParts, untyped, type OriginalHeaders, type ReportParts } from './report-parts.js';

export interface BounceRecipient {
  /** Final-Recipient (lower-case): the address the remote MTA refused. */
  address: string;
  /** Original-Recipient, when the report names it. */
  originalRecipient?: string;
  /** failed | delayed | delivered | relayed | expanded (lower-case). */
  action: string;
  /** Enhanced status code (`5.1.1`); `5.0.0` / `4.0.0` when a non-standard bounce gives none. */
  status: string;
  /** The remote server's reply text (Diagnostic-Code without its type), or the bounce's own words. */
  diagnostic: string;
  /** The basic SMTP reply code, when the diagnostic starts with one. */
  code?: number;
  /** The MTA that refused (Remote-MTA without its type). */
  remoteMta?: string;
}

export interface ParsedBounce {
  kind: 'dsn' | 'non-standard';
  reportingMta?: string;
  recipients: BounceRecipient[];
  originalHeaders?: OriginalHeaders;
}

const ENHANCED = /\b([245])\.(\d{1,3})\.(\d{1,3})\b/;
const REPLY = /(?:^|[\s:;])([245]\d\d)(?:[ -]+([245]\.\d{1,3}\.\d{1,3}))?[ -:]?\s*(.*)$/m;

/** True for a recipient that counts as a bounce: `Action: failed` with a permanent (5.x.x) status. */
export function isPermanentFailure(r: BounceRecipient): boolean {
  return r.action === 'failed' && r.status.startsWith('5.');
}

/** A multi-line reply (`550-5.1.1 a 550-5.1.1 b 550 5.1.1 c`) as one: the first code and status, then the words. */
function oneReply(diagnostic: string): string {
  const text = diagnostic.replace(/\s+/g, ' ').trim();
  const head = /^([245]\d\d)[ -](?:([245]\.\d{1,3}\.\d{1,3}) ?)?/.exec(text);
  if (!head) return text;
  const words = text.replace(/(?:^|\s)[245]\d\d[ -](?:[245]\.\d{1,3}\.\d{1,3})?\s*/g, ' ').replace(/\s+/g, ' ').trim();
  return `${head[1]} ${head[2] ? `${head[2]} ` : ''}${words}`.trim();
}

function codeOf(diagnostic: string): number | undefined {
  const m = /^\s*([245]\d\d)(?:[ -]|$)/.exec(diagnostic);
  return m ? Number(m[1]) : undefined;
}

function dsnRecipients(body: string): { reportingMta?: string; recipients: BounceRecipient[] } {
  const [perMessage, ...perRecipient] = fieldBlocks(body);
  const recipients: BounceRecipient[] = [];
  const blocks = perMessage && perMessage.getFirst('Final-Recipient') ? [perMessage, ...perRecipient] : perRecipient;
  for (const block of blocks) {
    const address = bareAddress(block.getFirst('Final-Recipient')) ?? bareAddress(block.getFirst('Original-Recipient'));
    if (!address) continue;
    const diagnostic = oneReply(untyped(block.getFirst('Diagnostic-Code')));
    const statusField = block.getFirst('Status');
    const status = ENHANCED.exec(statusField)?.[0] ?? ENHANCED.exec(diagnostic)?.[0] ?? '';
    const original = bareAddress(block.getFirst('Original-Recipient'));
    const remote = untyped(block.getFirst('Remote-MTA')).split(/[\s(]/)[0].replace(/\.$/, '');
    const code = codeOf(diagnostic);
    recipients.push({
      address,
      ...(original && original !== address ? { originalRecipient: original } : {}),
      action: block.getFirst('Action').toLowerCase().split(/[\s(]/)[0],
      status,
      diagnostic,
      ...(code !== undefined ? { code } : {}),
      ...(remote ? { remoteMta: remote } : {}),
    });
  }
  const reporting = perMessage ? untyped(perMessage.getFirst('Reporting-MTA')) : '';
  return { ...(reporting ? { reportingMta: reporting } : {}), recipients };
}

/** The reply a bounce's text gives for one recipient: the first SMTP reply after the address. */
function replyIn(text: string): { code?: number; status?: string; diagnostic: string; remoteMta?: string } {
  const m = REPLY.exec(text);
  const host = /\bhost\s+([A-Za-z0-9.-]+\.[A-Za-z]{2,})\b/.exec(text)?.[1] ?? /^([0-9.]+|[A-Za-z0-9.-]+\.[A-Za-z]{2,}) does not like recipient/m.exec(text)?.[1];
  const words = text.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  if (m) {
    const diagnostic = `${m[1]} ${m[2] ? `${m[2]} ` : ''}${m[3]}`.trim();
    return { code: Number(m[1]), status: m[2] ?? ENHANCED.exec(m[3])?.[0], diagnostic, ...(host ? { remoteMta: host } : {}) };
  }
  return { diagnostic: words.join(' ').slice(0, 500), ...(host ? { remoteMta: host } : {}) };
}

/** Where a non-standard bounce's copy of the original message starts (Exim, qmail, Postfix-like texts). */
const COPY_MARKERS = [/^-+ This is a copy of the message.*$/im, /^--- Below this line is a copy of the message\.?$/im, /^-+ (?:Original|Returned) message -+$/im, /^--- Enclosed are the original headers.*$/im];

function splitCopy(text: string): { report: string; copy?: string } {
  for (const marker of COPY_MARKERS) {
    const m = marker.exec(text);
    if (m) return { report: text.slice(0, m.index), copy: text.slice(m.index + m[0].length) };
  }
  return { report: text };
}

function failedFrom(address: string, reply: ReturnType<typeof replyIn>): BounceRecipient {
  const permanent = reply.code === undefined || reply.code >= 500;
  return {
    address,
    action: permanent ? 'failed' : 'delayed',
    status: reply.status ?? ENHANCED.exec(reply.diagnostic)?.[0] ?? (permanent ? '5.0.0' : '4.0.0'),
    diagnostic: reply.diagnostic,
    ...(reply.code !== undefined ? { code: reply.code } : {}),
    ...(reply.remoteMta ? { remoteMta: reply.remoteMta } : {}),
  };
}

/** Exim: `X-Failed-Recipients`, and per address an indented block with the remote server's reply. */
function eximRecipients(parts: ReportParts, report: string): BounceRecipient[] {
  const listed = parts.headers.getFirst('X-Failed-Recipients').split(',').map(bareAddress).filter((a): a is string => !!a);
  return listed.map((address) => {
    const at = report.toLowerCase().indexOf(address);
    const after = at >= 0 ? report.slice(at + address.length) : report;
    // The block ends at the next unindented line (the next address or the closing text).
    const block = after.split(/\r?\n(?=\S)/)[0] ?? '';
    return failedFrom(address, replyIn(block.trim() ? block : after));
  });
}

/** qmail: `<address>:` on a line of its own, then what the remote host said, until a blank line. */
function qmailRecipients(report: string): BounceRecipient[] {
  if (!/qmail-send program|wasn't able to deliver your message|could not be delivered/i.test(report)) return [];
  const out: BounceRecipient[] = [];
  const block = /^<([^<>\s]+@[^<>\s]+)>:[ \t]*\r?\n([\s\S]*?)(?=\r?\n[ \t]*\r?\n|\r?\n<[^<>\s]+@[^<>\s]+>:|(?![\s\S]))/gm;
  for (const m of report.matchAll(block)) out.push(failedFrom(m[1].toLowerCase(), replyIn(m[2])));
  return out;
}

/** Reads the bounce in `raw`, or undefined when it is not one (or cannot be read). */
export async function parseBounce(raw: Buffer): Promise<ParsedBounce | undefined> {
  const parts = await readReportParts(raw);
  return parts ? bounceOf(parts) : undefined;
}

/** The bounce of already split parts (the service splits once for bounce and complaint parsing). */
export function bounceOf(parts: ReportParts): ParsedBounce | undefined {
  if (parts.deliveryStatus !== undefined) {
    const { reportingMta, recipients } = dsnRecipients(parts.deliveryStatus);
    if (recipients.length === 0) return undefined;
    return { kind: 'dsn', ...(reportingMta ? { reportingMta } : {}), recipients, ...(parts.originalHeaders ? { originalHeaders: parts.originalHeaders } : {}) };
  }
  const { report, copy } = splitCopy(parts.text);
  const recipients = parts.headers.hasHeader('X-Failed-Recipients') ? eximRecipients(parts, report) : qmailRecipients(report);
  if (recipients.length === 0) return undefined;
  const originalHeaders = parts.originalHeaders ?? (copy ? originalHeadersOf(headerBlock(copy)) : undefined);
  return { kind: 'non-standard', recipients, ...(originalHeaders ? { originalHeaders } : {}) };
}
