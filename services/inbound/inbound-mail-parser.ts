/**
 * Parses a mail received on an inbound route with mailparser into the message fields of an
 * `InboundMail` record, within limits: text and HTML cut to `maxTextBytes` each, attachments
 * inlined (base64) while each is at most `maxAttachmentBytes` and their running total at most
 * `maxAttachmentsTotalBytes` (the others keep their metadata), and `truncated` saying what was
 * cut. A message mailparser refuses (a header block over `maxHeaderBytes`, more than `maxParts`
 * parts) is an UnparseableMail: the listener answers 550 5.6.0, never crashes.
 */
import { simpleParser, type AddressObject, type EmailAddress, type ParsedMail } from 'mailparser';
import { PermanentError } from '../../shared/errors.js';
import type { InboundMail } from '../../shared/contracts/inbound-mail.js';

export interface InboundMailLimits {
  maxTextBytes: number;
  maxAttachmentBytes: number;
  maxAttachmentsTotalBytes: number;
  maxHeaderBytes: number;
  maxParts: number;
}

/** The fields of the record that come from the message itself. */
export type ParsedInboundMail = Pick<
  InboundMail,
  'messageId' | 'subject' | 'from' | 'to' | 'cc' | 'replyTo' | 'inReplyTo' | 'references' | 'date' | 'headers' | 'text' | 'html' | 'attachments' | 'truncated'
>;

/** A message that cannot be read within the limits; sending it again cannot help. */
export class UnparseableMail extends PermanentError {
  constructor(message: string, cause?: unknown) {
    super('UNPARSEABLE_MAIL', message, { cause });
  }
}

type Address = NonNullable<InboundMail['from']>[number];

/** `s` cut to at most `maxBytes` of UTF-8, never inside a character. */
export function cutUtf8(s: string, maxBytes: number): { value: string; cut: boolean } {
  // A string of n UTF-16 units is at most 3n bytes of UTF-8: short strings need no encoding.
  if (s.length * 3 <= maxBytes) return { value: s, cut: false };
  const bytes = Buffer.from(s, 'utf8');
  if (bytes.length <= maxBytes) return { value: s, cut: false };
  let end = maxBytes;
  // Back up to the start of the character the limit falls in (continuation bytes are 10xxxxxx).
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
  return { value: bytes.subarray(0, end).toString('utf8'), cut: true };
}

function addresses(field: AddressObject | AddressObject[] | undefined): Address[] | undefined {
  if (!field) return undefined;
  const out: Address[] = [];
  const add = (a: EmailAddress): void => {
    if (a.group) a.group.forEach(add);
    else if (a.address) out.push(a.name ? { address: a.address, name: a.name } : { address: a.address });
  };
  for (const object of Array.isArray(field) ? field : [field]) object.value.forEach(add);
  return out.length > 0 ? out : undefined;
}

/** Header lines in order as [name, value], unfolded (RFC 5322 §2.2.3), values as received. */
function headerLines(parsed: ParsedMail): Array<[string, string]> {
  return parsed.headerLines.map(({ line }) => {
    const colon = line.indexOf(':');
    const name = colon >= 0 ? line.slice(0, colon).trim() : line.trim();
    const value = colon >= 0 ? line.slice(colon + 1).replace(/\r?\n(?=[ \t])/g, '').trim() : '';
    return [name, value];
  });
}

function attachmentsOf(parsed: ParsedMail, limits: InboundMailLimits): { attachments: InboundMail['attachments']; cut: boolean } {
  let inlined = 0;
  let cut = false;
  const attachments = parsed.attachments.map((a) => {
    const size = a.content?.length ?? a.size ?? 0;
    const keep = a.content !== undefined && size <= limits.maxAttachmentBytes && inlined + size <= limits.maxAttachmentsTotalBytes;
    if (keep) inlined += size;
    else cut = true;
    return {
      ...(a.filename ? { filename: a.filename } : {}),
      contentType: a.contentType || 'application/octet-stream',
      size,
      ...(a.contentId ? { contentId: a.contentId } : {}),
      ...(keep ? { content: a.content.toString('base64') } : {}),
    };
  });
  return { attachments, cut };
}

/** Parses `raw`; throws UnparseableMail when mailparser refuses it. */
export async function parseInboundMail(raw: Buffer, limits: InboundMailLimits): Promise<ParsedInboundMail> {
  let parsed: ParsedMail;
  try {
    parsed = await simpleParser(raw, {
      maxHeadSize: limits.maxHeaderBytes,
      maxChildNodes: limits.maxParts,
      // The HTML stays as sent: no data: URLs for cid: images (they are attachments), no text-as-HTML.
      keepCidLinks: true,
      skipImageLinks: true,
      skipTextToHtml: true,
      // Text is made from HTML only for messages without a text part, and only from the HTML a record keeps.
      maxHtmlLengthToParse: limits.maxTextBytes,
      checksumAlgo: false,
    });
  } catch (err) {
    throw new UnparseableMail(`the message cannot be parsed: ${(err as Error).message}`, err);
  }
  const truncated: NonNullable<InboundMail['truncated']> = {};
  const text = parsed.text !== undefined ? cutUtf8(parsed.text, limits.maxTextBytes) : undefined;
  const html = typeof parsed.html === 'string' ? cutUtf8(parsed.html, limits.maxTextBytes) : undefined;
  if (text?.cut) truncated.text = true;
  if (html?.cut) truncated.html = true;
  const { attachments, cut } = attachmentsOf(parsed, limits);
  if (cut) truncated.attachments = true;
  const date = parsed.date && !Number.isNaN(parsed.date.getTime()) ? parsed.date.toISOString() : undefined;
  const references = parsed.references === undefined ? undefined : Array.isArray(parsed.references) ? parsed.references : [parsed.references];
  const opt = <K extends keyof ParsedInboundMail>(key: K, value: ParsedInboundMail[K] | undefined) => (value === undefined || value === '' ? {} : { [key]: value });
  return {
    ...opt('messageId', parsed.messageId),
    ...opt('subject', parsed.subject),
    ...opt('from', addresses(parsed.from)),
    ...opt('to', addresses(parsed.to)),
    ...opt('cc', addresses(parsed.cc)),
    ...opt('replyTo', addresses(parsed.replyTo)),
    ...opt('inReplyTo', parsed.inReplyTo),
    ...opt('references', references),
    ...opt('date', date),
    headers: headerLines(parsed),
    ...opt('text', text?.value),
    ...opt('html', html?.value),
    attachments,
    ...(Object.keys(truncated).length > 0 ? { truncated } : {}),
  };
}
