/**
 * Which SMTP replies mean "you are sending too fast" — the signal adaptive back-off slows a
 * (source address, site) down on. Pure; the table of real provider replies is in the test.
 *
 * Only transient replies count (a 5xx is a verdict on the message or the sender, not a speed
 * limit). Greylisting (451 4.7.1 "greylisted, come back later") and per-mailbox conditions (4.2.x
 * mailbox full or receiving too fast, 4.1.x address, 4.5.3 too many recipients) are about one
 * recipient or one first attempt, not the site's rate, so they do not slow the site down.
 */

/** Why a reply throttles (a small fixed set: it is a metric label). */
export type ThrottleReason = 'gmail-rate' | 'microsoft' | 'yahoo' | 'rate-limit' | 'try-again-later' | '421' | '4.7.x';

export interface ObservedReply {
  code?: number;
  enhanced?: string;
  text?: string;
}

const GREYLIST = /gr[ae]y[- ]?list/i;
const NOT_THE_SITE = /^4\.(1\.\d+|2\.\d+|5\.3)$/;
const PER_MAILBOX_TEXT = /receiving mail (at|too) .{0,10}rate|over quota|mailbox (is )?full|insufficient storage/i;

const RULES: Array<[ThrottleReason, (r: { code?: number; enhanced: string; text: string }) => boolean]> = [
  // Google: "421 4.7.28 … unusual rate of unsolicited mail … temporarily rate limited".
  ['gmail-rate', (r) => r.enhanced === '4.7.28' || /unusual rate/i.test(r.text)],
  // Yahoo / AOL: [TS01] [TS02] [TS03] [TSS04] "temporarily deferred due to unexpected volume or user complaints".
  ['yahoo', (r) => /\[TSS?0\d\]/i.test(r.text)],
  // Microsoft: "451 4.7.500 Server busy. Please try again later", 4.7.650 "rate limited due to IP
  // reputation", outlook.com "421 RP-001/RP-002 … we have limits for how many messages…".
  ['microsoft', (r) => /^4\.7\.(500|650|651|66\d)$/.test(r.enhanced) || /\bRP-00\d\b|server busy|temporarily rate limited due to ip reputation/i.test(r.text)],
  ['rate-limit', (r) => /throttl|rate[- ]limit|too many (concurrent )?(smtp )?(connections|messages|sessions)|too much mail|exceeded .{0,40}limit|sending rate|slow down/i.test(r.text)],
  ['try-again-later', (r) => /try (again )?later|come back later|please retry later/i.test(r.text)],
  ['421', (r) => r.code === 421],
  ['4.7.x', (r) => /^4\.7\.\d+$/.test(r.enhanced)],
];

/**
 * The throttling reason of an SMTP reply (or connection error text), or undefined when it does
 * not ask us to slow down.
 */
export function throttleReason(reply: ObservedReply): ThrottleReason | undefined {
  const text = reply.text ?? '';
  const enhanced = reply.enhanced ?? /\b([245]\.\d{1,3}\.\d{1,3})\b/.exec(text)?.[1] ?? '';
  const code = reply.code;
  // Transient replies only; a connection error without a code counts only by its words.
  if (code !== undefined && (code < 400 || code >= 500)) return undefined;
  if (GREYLIST.test(text) || NOT_THE_SITE.test(enhanced) || PER_MAILBOX_TEXT.test(text)) return undefined;
  const r = { code, enhanced, text };
  for (const [reason, test] of RULES) {
    if (code === undefined && (reason === '421' || reason === '4.7.x')) continue;
    if (test(r)) return reason;
  }
  return undefined;
}
