/**
 * Splits one received message into the parts a bounce or complaint parser reads, with
 * mailsplit (a streaming MIME splitter; no hand-written MIME parsing): the top-level headers,
 * the machine-readable report (message/delivery-status, message/feedback-report), the
 * human-readable text, and the headers of the returned original message (message/rfc822 or
 * text/rfc822-headers). Bodies are kept only for those parts and only up to a bound each, so a
 * large attachment costs nothing but the pass over its bytes.
 */
import { Readable } from 'node:stream';
import { Headers, Splitter, type MimeNode, type SplitterChunk } from '@zone-eu/mailsplit';

const NO_HEADERS = new Headers(Buffer.from('\r\n'));
const headersOf = (node: MimeNode): Headers => node.headers || NO_HEADERS;

/** Most bytes kept of one interesting part (a report, the text, the original headers). */
const PART_BYTES = 256 * 1024;
/** Most bytes of human-readable text kept over all text parts (non-standard bounces are read from it). */
const TEXT_BYTES = 128 * 1024;

/** The headers of the original message a report returns, as far as it includes them. */
export interface OriginalHeaders {
  messageId?: string;
  /** The original envelope sender (Return-Path), e.g. a signed `b-<token>@…` return path. */
  returnPath?: string;
  from?: string;
  to?: string;
  subject?: string;
  /** `X-Postline-Ref`: the signed reference the renderer put into each recipient's copy. */
  ref?: string;
}

export interface ReportParts {
  headers: Headers;
  /** Decoded body of message/delivery-status (or message/global-delivery-status). */
  deliveryStatus?: string;
  /** Decoded body of message/feedback-report. */
  feedbackReport?: string;
  /** Text/plain parts outside the returned original message, decoded, joined. */
  text: string;
  originalHeaders?: OriginalHeaders;
}

interface Collecting {
  node: MimeNode;
  role: 'delivery-status' | 'feedback-report' | 'text' | 'original-headers';
  chunks: Buffer[];
  bytes: number;
}

function insideEmbedded(node: MimeNode): boolean {
  for (let p = node.parentNode; p; p = p.parentNode) if (p.messageNode) return true;
  return false;
}

function roleOf(node: MimeNode): Collecting['role'] | undefined {
  const type = node.contentType || (node.root ? 'text/plain' : '');
  if (type === 'message/delivery-status' || type === 'message/global-delivery-status') return 'delivery-status';
  if (type === 'message/feedback-report') return 'feedback-report';
  // A message/rfc822 part reaches here only when it is not split (an attachment, or encoded): its head is the original's.
  if (type === 'text/rfc822-headers' || type === 'text/global-headers' || type === 'message/rfc822' || type === 'message/global') return 'original-headers';
  if (type === 'text/plain' && !insideEmbedded(node) && headersOf(node).getFirst('Content-Disposition').toLowerCase().split(';')[0].trim() !== 'attachment') return 'text';
  return undefined;
}

/** Decodes a part's transfer encoding with mailsplit's own decoder (base64, quoted-printable, …). */
async function decodeBody(node: MimeNode, raw: Buffer): Promise<Buffer> {
  if (!node.encoding || node.encoding === '7bit' || node.encoding === '8bit' || node.encoding === 'binary') return raw;
  const decoder = node.getDecoder();
  const out: Buffer[] = [];
  decoder.on('data', (c: Buffer) => out.push(c));
  await new Promise<void>((resolve, reject) => {
    decoder.once('end', resolve);
    decoder.once('error', reject);
    decoder.end(raw);
  });
  return Buffer.concat(out);
}

export function originalHeadersOf(headers: Headers): OriginalHeaders | undefined {
  const pick = (name: string) => headers.getFirst(name) || undefined;
  const found: OriginalHeaders = {
    messageId: pick('Message-ID'),
    returnPath: pick('Return-Path')?.replace(/^<|>$/g, ''),
    from: pick('From'),
    to: pick('To'),
    subject: pick('Subject'),
    ref: pick('X-Postline-Ref'),
  };
  const kept = Object.fromEntries(Object.entries(found).filter(([, v]) => v !== undefined && v !== '')) as OriginalHeaders;
  return Object.keys(kept).length > 0 ? kept : undefined;
}

/** Parses a header block (e.g. the text after "a copy of the message follows") with mailsplit. */
export function headerBlock(text: string): Headers {
  const head = text.replace(/^(?:[ \t]*\r?\n)+/, '').split(/\r?\n[ \t]*\r?\n/, 1)[0];
  return new Headers(Buffer.from(`${head}\r\n`, 'utf8'));
}

/**
 * The parts of `raw`. Never throws on content: a message mailsplit cannot split (over its
 * header limits) yields undefined.
 */
export async function readReportParts(raw: Buffer): Promise<ReportParts | undefined> {
  const splitter = new Splitter({ maxHeadSize: 256 * 1024, defaultInlineEmbedded: true });
  let root: MimeNode | undefined;
  let current: Collecting | undefined;
  let embeddedRoot: MimeNode | undefined;
  const done: Collecting[] = [];
  splitter.on('data', (data: SplitterChunk) => {
    if (data.type === 'node') {
      const node = data;
      if (current) done.push(current);
      current = undefined;
      if (!root) root = node;
      if (!embeddedRoot && node.parentNode && node.parentNode.messageNode && !insideEmbedded(node.parentNode)) embeddedRoot = node;
      const role = node.multipart || (node.rfc822 && node.messageNode) ? undefined : roleOf(node);
      if (role) current = { node, role, chunks: [], bytes: 0 };
    } else if (data.type === 'body' && current && data.value) {
      const room = PART_BYTES - current.bytes;
      if (room > 0) {
        const chunk = data.value.length > room ? data.value.subarray(0, room) : data.value;
        current.chunks.push(chunk);
        current.bytes += chunk.length;
      }
    }
  });
  try {
    await new Promise<void>((resolve, reject) => {
      (splitter as unknown as NodeJS.EventEmitter).once('end', resolve).once('error', reject);
      Readable.from([raw]).pipe(splitter);
    });
  } catch {
    return undefined;
  }
  if (current) done.push(current);
  if (!root) return undefined;

  const parts: ReportParts = { headers: headersOf(root), text: '' };
  if (embeddedRoot) parts.originalHeaders = originalHeadersOf(headersOf(embeddedRoot));
  for (const c of done) {
    let body: string;
    try {
      body = (await decodeBody(c.node, Buffer.concat(c.chunks))).toString('utf8');
    } catch {
      continue;
    }
    if (c.role === 'delivery-status') parts.deliveryStatus ??= body;
    else if (c.role === 'feedback-report') parts.feedbackReport ??= body;
    else if (c.role === 'original-headers') parts.originalHeaders ??= originalHeadersOf(headerBlock(body));
    else if (parts.text.length < TEXT_BYTES) parts.text += (parts.text ? '\n' : '') + body.slice(0, TEXT_BYTES - parts.text.length);
  }
  return parts;
}

/**
 * The field blocks of a delivery-status or feedback-report body (RFC 3464 §2.1, RFC 5965 §3):
 * header-like fields in blocks separated by blank lines, each read with mailsplit's header parser.
 */
export function fieldBlocks(body: string): Headers[] {
  return body
    .split(/\r?\n(?:[ \t]*\r?\n)+/)
    .filter((b) => b.trim().length > 0)
    .map((b) => new Headers(Buffer.from(`${b.replace(/^(?:[ \t]*\r?\n)+/, '')}\r\n`, 'utf8')));
}

/** The value of a typed field (`rfc822; a@b.c`, `dns; mx.example.com`, `smtp; 550 …`) without its type. */
export function untyped(value: string): string {
  const semi = value.indexOf(';');
  return (semi >= 0 && /^[A-Za-z0-9-]+$/.test(value.slice(0, semi).trim()) ? value.slice(semi + 1) : value).trim();
}

/** A bare, lower-cased address from `<a@b.c>`, `rfc822; a@b.c` or `Name <a@b.c>`. */
export function bareAddress(value: string): string | undefined {
  const v = untyped(value);
  const angle = /<([^<>\s]+@[^<>\s]+)>/.exec(v);
  const addr = angle ? angle[1] : /[^\s<>"]+@[^\s<>"]+/.exec(v)?.[0];
  return addr ? addr.replace(/[.,;]+$/, '').toLowerCase() : undefined;
}
