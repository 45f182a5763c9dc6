/**
 * Reads a complaint report in the Abuse Reporting Format (RFC 5965): a multipart/report with a
 * message/feedback-report part (Feedback-Type, User-Agent, Original-Mail-From, …) and the
 * complained-about message (message/rfc822) or its headers (text/rfc822-headers). Pure.
 */
import { bareAddress, fieldBlocks, readReportParts, untyped, type OriginalHeaders, type ReportParts } from './report-parts.js';

export interface ParsedArf {
  /** abuse, fraud, virus, not-spam, other, … (lower-case). */
  feedbackType: string;
  userAgent?: string;
  /** Original-Rcpt-To: the recipient who complained (often redacted by the provider). */
  originalRecipient?: string;
  originalMailFrom?: string;
  arrivalDate?: string;
  sourceIp?: string;
  reportedDomain?: string;
  /** Headers of the complained-about message, among them `ref` (X-Postline-Ref) and `returnPath`. */
  originalHeaders?: OriginalHeaders;
}

/** Reads the complaint in `raw`, or undefined when it is not an ARF report. */
export async function parseArf(raw: Buffer): Promise<ParsedArf | undefined> {
  const parts = await readReportParts(raw);
  return parts ? arfOf(parts) : undefined;
}

/** The complaint of already split parts. */
export function arfOf(parts: ReportParts): ParsedArf | undefined {
  if (parts.feedbackReport === undefined) return undefined;
  const [fields] = fieldBlocks(parts.feedbackReport);
  const feedbackType = fields?.getFirst('Feedback-Type').toLowerCase().trim();
  if (!fields || !feedbackType) return undefined;
  const opt = (key: keyof ParsedArf, value: string | undefined) => (value ? { [key]: value } : {});
  return {
    feedbackType,
    ...opt('userAgent', fields.getFirst('User-Agent')),
    ...opt('originalRecipient', bareAddress(fields.getFirst('Original-Rcpt-To'))),
    ...opt('originalMailFrom', bareAddress(fields.getFirst('Original-Mail-From'))),
    ...opt('arrivalDate', fields.getFirst('Arrival-Date') || fields.getFirst('Received-Date')),
    ...opt('sourceIp', untyped(fields.getFirst('Source-IP'))),
    ...opt('reportedDomain', fields.getFirst('Reported-Domain').toLowerCase()),
    ...(parts.originalHeaders ? { originalHeaders: parts.originalHeaders } : {}),
  } as ParsedArf;
}
