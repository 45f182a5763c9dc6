/**
 * Open and click tracking in the renderer: which messages are tracked, and the HTML of one
 * recipient's copy with its links rewritten to signed click redirects and the open pixel added
 * (shared/tracking/tracking-links.ts). Pure and deterministic (tokens are HMACs, `issuedAt`
 * comes from the request), so rendering a record again yields the same bytes.
 *
 * The HTML is read by htmlparser2's tokenizer, not by regular expressions, once per message
 * (`planRewrite`); each copy then replaces the `href` attributes of `<a>` start tags in place
 * (`applyRewrite`; everything else, byte for byte, stays as written).
 * Rewritten: `http://` and `https://` links. Left alone: other schemes (mailto:, tel:, `#…`,
 * relative), links marked `data-postline-notrack`, and the List-Unsubscribe URL
 * (`feedback.unsubscribeUrl`). `linkIndex` counts the rewritten links in document order from 0.
 * The pixel goes before `</body>` (or at the end without one). The text part is not changed:
 * its links stay as written (clicks there are not counted).
 */
import { Parser } from 'htmlparser2';
import type { EmailRequested } from '../../shared/contracts/email-requested.js';
import type { FeedbackKeyring } from '../../shared/feedback/feedback-token.js';
import { TRACKABLE_URL, clickUrl, pixelUrl, type TrackedCopy } from '../../shared/tracking/tracking-links.js';

export interface TrackingPolicy {
  keyring: FeedbackKeyring;
  /** `tracking.baseUrl` without trailing slashes ('' : only tenants in `domains` are tracked). */
  baseUrl: string;
  /** Per-tenant base URLs (`tracking.domains`), without trailing slashes. */
  domains: Readonly<Record<string, string>>;
  opens: boolean;
  clicks: boolean;
  tenants: Readonly<Record<string, { opens?: boolean; clicks?: boolean }>>;
  /** Links starting with one of these are never rewritten (the unsubscribe URL). */
  untracked: readonly string[];
}

export interface MessageTracking {
  opens: boolean;
  clicks: boolean;
  base: string;
}

export interface RewriteOptions {
  /** The redirect URL of the `index`th rewritten link; undefined leaves that link as it is. */
  link?: (index: number, url: string) => string | undefined;
  /** The pixel's URL; unset: no pixel. */
  pixel?: string;
}

const NO_TRACK_ATTRIBUTE = 'data-postline-notrack';

const escapeAttribute = (v: string): string => v.replaceAll('&', '&amp;').replaceAll('"', '&quot;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');

/** What this message tracks (request, else tenant, else global default), or undefined for nothing. */
export function trackingFor(req: Pick<EmailRequested, 'tenant' | 'track' | 'html' | 'template'>, policy: TrackingPolicy): MessageTracking | undefined {
  const base = policy.domains[req.tenant] ?? policy.baseUrl;
  if (!base) return undefined;
  const tenant = policy.tenants[req.tenant] ?? {};
  const opens = req.track?.opens ?? tenant.opens ?? policy.opens;
  const clicks = req.track?.clicks ?? tenant.clicks ?? policy.clicks;
  return opens || clicks ? { opens, clicks, base } : undefined;
}

/** The earliest the message can be sent, in Unix seconds: its sendAt when later than its acceptance. */
export function issuedAtOf(req: Pick<EmailRequested, 'acceptedAt' | 'sendAt'>): number {
  const accepted = Date.parse(req.acceptedAt);
  const sendAt = req.sendAt ? Date.parse(req.sendAt) : NaN;
  const at = Number.isFinite(sendAt) && sendAt > accepted ? sendAt : accepted;
  return Number.isFinite(at) ? Math.floor(at / 1000) : 0;
}

/** Where a message's HTML changes: found once per message, applied once per recipient copy. */
export interface HtmlPlan {
  html: string;
  /** Trackable `href` attributes in document order: the attribute's span and its (decoded) URL. */
  links: Array<{ start: number; end: number; url: string }>;
  /** Where `</body>` starts (the pixel goes there), or undefined (the end). */
  bodyEnd?: number;
}

/** Tokenizes `html` once: the http(s) links that may be rewritten and where `</body>` is. */
export function planRewrite(html: string): HtmlPlan {
  const links: HtmlPlan['links'] = [];
  let tag = '';
  let href: { value: string; start: number; end: number } | undefined;
  let noTrack = false;
  let bodyEnd: number | undefined;
  const parser = new Parser(
    {
      onopentagname(name) {
        tag = name;
        href = undefined;
        noTrack = false;
      },
      onattribute(name, value) {
        if (tag !== 'a') return;
        if (name === NO_TRACK_ATTRIBUTE) noTrack = true;
        // Browsers follow the first href of a tag.
        else if (name === 'href' && !href) href = { value, start: parser.startIndex, end: parser.endIndex };
      },
      onopentag(name) {
        if (name !== 'a' || !href || noTrack) return;
        const url = href.value.trim();
        if (TRACKABLE_URL.test(url)) links.push({ start: href.start, end: href.end, url });
      },
      onclosetag(name, implied) {
        if (name === 'body' && !implied && bodyEnd === undefined) bodyEnd = parser.startIndex;
      },
    },
    { decodeEntities: true, lowerCaseTags: true, lowerCaseAttributeNames: true },
  );
  parser.end(html);
  return { html, links, ...(bodyEnd !== undefined ? { bodyEnd } : {}) };
}

/** The planned HTML with its links replaced and the pixel added, as `opts` say. */
export function applyRewrite(plan: HtmlPlan, opts: RewriteOptions): string {
  const { html } = plan;
  const edits: Array<{ start: number; end: number; text: string }> = [];
  let linkIndex = 0;
  if (opts.link) {
    for (const l of plan.links) {
      const target = opts.link(linkIndex, l.url);
      if (target === undefined) continue;
      linkIndex++;
      edits.push({ start: l.start, end: l.end, text: `href="${escapeAttribute(target)}"` });
    }
  }
  if (opts.pixel) {
    const at = plan.bodyEnd ?? html.length;
    edits.push({ start: at, end: at, text: `<img src="${escapeAttribute(opts.pixel)}" width="1" height="1" alt="" style="display:block;width:1px;height:1px;border:0" />` });
  }
  if (edits.length === 0) return html;
  let out = '';
  let at = 0;
  for (const e of edits) {
    out += html.slice(at, e.start) + e.text;
    at = e.end;
  }
  return out + html.slice(at);
}

/** `html` with its links replaced and the pixel added, as `opts` say. */
export function rewriteHtml(html: string, opts: RewriteOptions): string {
  return applyRewrite(planRewrite(html), opts);
}

/** The tracked HTML of one recipient's copy (`html` planned once per message). Throws (a TypeError) when a field is too long for a token. */
export function trackedHtml(html: string | HtmlPlan, tracking: MessageTracking, policy: TrackingPolicy, copy: TrackedCopy): string {
  return applyRewrite(typeof html === 'string' ? planRewrite(html) : html, {
    ...(tracking.clicks
      ? { link: (index: number, url: string) => (policy.untracked.some((p) => url.startsWith(p)) ? undefined : clickUrl(policy.keyring, tracking.base, copy, index, url)) }
      : {}),
    ...(tracking.opens ? { pixel: pixelUrl(policy.keyring, tracking.base, copy) } : {}),
  });
}

/** A base URL's problem (`https://host[/path]`, no query, fragment or credentials), or undefined. */
function baseUrlProblem(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'is not a URL';
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') return 'must be an http(s):// URL';
  if (parsed.search || parsed.hash || parsed.username || parsed.password) return 'must be a plain base URL (no query, fragment or credentials)';
  return undefined;
}

/** Problems of `tracking.baseUrl` and `tracking.domains` (each names its option). */
export function trackingConfigProblems(tracking: { baseUrl: string; domains: Record<string, string> }): string[] {
  const problems: string[] = [];
  const base = tracking.baseUrl ? baseUrlProblem(tracking.baseUrl) : undefined;
  if (base) problems.push(`POSTLINE_TRACKING_BASE_URL (${JSON.stringify(tracking.baseUrl)}): ${base}`);
  for (const [tenant, url] of Object.entries(tracking.domains)) {
    const p = baseUrlProblem(url);
    if (p) problems.push(`POSTLINE_TRACKING_DOMAINS (${JSON.stringify(tenant)}: ${JSON.stringify(url)}): ${p}`);
  }
  return problems;
}

/** The policy from config, or undefined when nothing can be tracked (no feedback key, no base URL). */
export function trackingPolicy(
  keyring: FeedbackKeyring,
  tracking: { baseUrl: string; domains: Record<string, string>; opens: boolean; clicks: boolean; tenants: Record<string, { opens?: boolean; clicks?: boolean }> },
  unsubscribeUrl: string,
): TrackingPolicy | undefined {
  const trim = (u: string) => u.replace(/\/+$/, '');
  if (!keyring.enabled || (!tracking.baseUrl && Object.keys(tracking.domains).length === 0)) return undefined;
  return {
    keyring,
    baseUrl: trim(tracking.baseUrl),
    domains: Object.fromEntries(Object.entries(tracking.domains).map(([t, u]) => [t, trim(u)])),
    opens: tracking.opens,
    clicks: tracking.clicks,
    tenants: tracking.tenants,
    untracked: unsubscribeUrl ? [`${trim(unsubscribeUrl)}/u/`] : [],
  };
}
