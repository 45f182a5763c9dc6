/**
 * Per-recipient copies of a rendered message, when feedback is on (`feedback.keys` set): the
 * body is composed once, and each recipient's copy gets its own signed tokens in front of it —
 * `X-Postline-Ref` (always), `List-Unsubscribe` + `List-Unsubscribe-Post` (RFC 2369, RFC 8058;
 * when unsubscribe applies to the message) — and its own envelope sender, the signed return
 * path `b-<token>@<feedback.returnPathDomain>` (VERP; when that domain is set). Tokens are HMACs
 * of the message, tenant and recipient, so rendering a record again yields the same bytes.
 *
 * Everything here is pure. What goes into a header is either a token (base32: `[a-z2-7]`) or
 * configuration checked at start-up (`feedbackConfigProblems`); a header line that would exceed
 * RFC 5322's 998 characters (a very long tenant, recipient or list) is left out rather than
 * folded inside a token, and a token that cannot be signed (a field over its 255 bytes) leaves
 * its header (or the return path) out: the message still goes.
 */
import { domainToASCII } from 'node:url';
import type { EmailRequested } from '../../shared/contracts/email-requested.js';
import { UNSUBSCRIBE_MAILTO_PREFIX, returnPathOf, type FeedbackKeyring, type RefInput } from '../../shared/feedback/feedback-token.js';
import type { EnvelopePlan } from './request-checks.js';
import { espHeadersFor } from '../../shared/feedback/esp-headers.js';

/** Which messages get List-Unsubscribe by default (`renderer.unsubscribe`). */
export interface UnsubscribeDefaults {
  priorities: readonly string[];
  /** Per tenant: replaces `priorities`. */
  tenants: Readonly<Record<string, readonly string[]>>;
}

export interface FeedbackPolicy {
  /** Enabled (has a key): with no key the renderer makes no copies. */
  keyring: FeedbackKeyring;
  /** `feedback.returnPathDomain`; '' keeps the From address as envelope sender and leaves out the mailto. */
  returnPathDomain: string;
  /** `feedback.unsubscribeUrl` without trailing slashes; '' leaves out the URL and List-Unsubscribe-Post. */
  unsubscribeUrl: string;
  unsubscribe: UnsubscribeDefaults;
  /** ESPs a relay route goes through whose webhooks need the ref in a header of their own (`providerFeedback.espHeaders`). */
  espProviders?: readonly string[];
}

/** One recipient's copy: its envelope and the header lines (CRLF-terminated) put in front of the shared body. */
export interface RecipientCopy {
  domain: string;
  recipient: string;
  envelopeFrom: string;
  head: string;
}

/** RFC 5322 2.1.1: a line is at most 998 characters without its CRLF. */
const MAX_LINE = 998;
const HOST_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** Whether this message carries List-Unsubscribe: the request's `unsubscribe`, else its tenant's or priority's default. */
export function unsubscribeApplies(req: Pick<EmailRequested, 'tenant' | 'priority' | 'unsubscribe' | 'headers'>, defaults: UnsubscribeDefaults): boolean {
  if (req.unsubscribe !== undefined) return req.unsubscribe;
  // A request with a List-Unsubscribe of its own manages unsubscribes itself.
  if (Object.keys(req.headers ?? {}).some((h) => h.toLowerCase() === 'list-unsubscribe')) return false;
  return (defaults.tenants[req.tenant] ?? defaults.priorities).includes(req.priority);
}

/** The token, or undefined when a field is too long for one (the header is then left out). */
function tokenOf(keyring: FeedbackKeyring, ref: RefInput): string | undefined {
  try {
    return keyring.sign(ref);
  } catch {
    return undefined;
  }
}

const fits = (line: string) => line.length <= MAX_LINE;

/** The `List-Unsubscribe` (+ `-Post`) lines for one recipient; empty when no part fits or none is configured. */
function unsubscribeLines(policy: FeedbackPolicy, token: string): string[] {
  const parts: string[] = [];
  if (policy.unsubscribeUrl) parts.push(`<${policy.unsubscribeUrl}/u/${token}>`);
  if (policy.returnPathDomain) parts.push(`<mailto:${UNSUBSCRIBE_MAILTO_PREFIX}${token}@${policy.returnPathDomain}>`);
  // One URI per line, folded after the comma; a URI too long for a line is left out.
  const kept = parts.filter((p) => fits(`List-Unsubscribe: ${p},`));
  if (kept.length === 0) return [];
  const lines = [`List-Unsubscribe: ${kept.join(',\r\n ')}`];
  // RFC 8058: one-click needs an HTTPS URI in List-Unsubscribe.
  if (kept[0].startsWith('<http')) lines.push('List-Unsubscribe-Post: List-Unsubscribe=One-Click');
  return lines;
}

/** One copy per envelope recipient, in the plan's order. */
export function recipientCopies(req: Pick<EmailRequested, 'messageId' | 'tenant' | 'listId' | 'priority' | 'unsubscribe' | 'headers'>, plan: EnvelopePlan, policy: FeedbackPolicy): RecipientCopy[] {
  const withUnsubscribe = unsubscribeApplies(req, policy.unsubscribe);
  const fromDomain = plan.from.domain;
  const copies: RecipientCopy[] = [];
  for (const group of plan.groups) {
    for (const recipient of group.recipients) {
      const ref = { messageId: req.messageId, tenant: req.tenant, recipient, fromDomain, ...(req.listId ? { listId: req.listId } : {}) };
      const lines: string[] = [];
      const refToken = tokenOf(policy.keyring, { ...ref, purpose: 'ref' });
      if (refToken && fits(`X-Postline-Ref: ${refToken}`)) {
        lines.push(`X-Postline-Ref: ${refToken}`);
        for (const [name, value] of Object.entries(espHeadersFor(refToken, policy.espProviders ?? []))) if (fits(`${name}: ${value}`)) lines.push(`${name}: ${value}`);
      }
      if (withUnsubscribe) {
        const token = tokenOf(policy.keyring, { ...ref, purpose: 'unsubscribe' });
        if (token) lines.push(...unsubscribeLines(policy, token));
      }
      let envelopeFrom = plan.from.address;
      if (policy.returnPathDomain) {
        try {
          envelopeFrom = returnPathOf(policy.keyring, policy.returnPathDomain, { messageId: req.messageId, tenant: req.tenant, recipient });
        } catch {
          // A field too long for a token: bounces of this copy go to the From address.
        }
      }
      copies.push({ domain: group.domain, recipient, envelopeFrom, head: lines.map((l) => `${l}\r\n`).join('') });
    }
  }
  return copies;
}

/** `https://host[/path]` without trailing slashes, or a problem. */
function unsubscribeUrlProblem(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'is not a URL';
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') return 'must be an https:// URL';
  if (parsed.search || parsed.hash || parsed.username || parsed.password) return 'must be a plain base URL (no query, fragment or credentials)';
  // It goes into a header between < and >: printable ASCII only, none of the delimiters.
  if (!/^[\x21-\x7e]+$/.test(url) || /[<>,"]/.test(url)) return 'may only hold printable ASCII without spaces, <, >, "" or ","';
  return undefined;
}

/** Problems of `feedback.returnPathDomain` and `feedback.unsubscribeUrl` as the renderer uses them (each names its variable). */
export function feedbackConfigProblems(feedback: { returnPathDomain: string; unsubscribeUrl: string }): string[] {
  const problems: string[] = [];
  const domain = feedback.returnPathDomain;
  if (domain && (domainToASCII(domain) !== domain || domain.length > 253 || !domain.includes('.') || !domain.split('.').every((l) => HOST_LABEL.test(l)))) {
    problems.push(`POSTLINE_FEEDBACK_RETURN_PATH_DOMAIN (${JSON.stringify(domain)}): must be a lower-case ASCII host name such as bounces.example.com`);
  }
  const urlProblem = feedback.unsubscribeUrl ? unsubscribeUrlProblem(feedback.unsubscribeUrl) : undefined;
  if (urlProblem) problems.push(`POSTLINE_FEEDBACK_UNSUBSCRIBE_URL (${JSON.stringify(feedback.unsubscribeUrl)}): ${urlProblem}`);
  return problems;
}

/** The policy from config, or undefined when feedback is off (no key). */
export function feedbackPolicy(
  keyring: FeedbackKeyring,
  feedback: { returnPathDomain: string; unsubscribeUrl: string },
  unsubscribe: UnsubscribeDefaults,
  espProviders: readonly string[] = [],
): FeedbackPolicy | undefined {
  if (!keyring.enabled) return undefined;
  return { keyring, returnPathDomain: feedback.returnPathDomain, unsubscribeUrl: feedback.unsubscribeUrl.replace(/\/+$/, ''), unsubscribe, espProviders };
}
