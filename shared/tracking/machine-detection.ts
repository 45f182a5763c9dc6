/**
 * Is this open or click a person or a machine? Machine hits are flagged (`engagement.machine`
 * with `machineReason`), never dropped: analytics shows both. Pure; rules in order, first match:
 *
 * | reason         | rule                                                                              |
 * |----------------|-----------------------------------------------------------------------------------|
 * | `head-request` | a HEAD request: link checkers and scanners, never a mail client                   |
 * | `apple-mpp`    | opens from Apple Mail Privacy Protection's proxy: an address in `appleProxyCidrs` |
 * |                | (Apple's 17.0.0.0/8) or its bare `Mozilla/5.0` user agent; MPP prefetches every   |
 * |                | image on delivery, read or not                                                    |
 * | (person)       | image proxies that fetch when the person views the mail (Gmail's                  |
 * |                | GoogleImageProxy, YahooMailProxy) count as that person's open                     |
 * | `user-agent`   | the `isbot` package recognises the user agent (crawlers, scanners, curl, …)      |
 * | `no-user-agent`| no user agent at all                                                              |
 * | `too-soon`     | sooner than `withinSeconds` after the message could first be sent (its acceptance |
 * |                | or sendAt): security gateways fetch on delivery, people are slower                |
 * | `click-burst`  | a click on another link of the same copy within `clickBurstMs` of the previous    |
 * |                | click: scanners follow every link at once                                         |
 */
import { isbotMatch } from 'isbot';
import { inRanges, type parseCidrs } from './client-ip.js';

export interface MachineRules {
  appleProxyRanges: ReturnType<typeof parseCidrs>;
  /** 0: off. */
  withinSeconds: number;
  /** 0: off. */
  clickBurstMs: number;
  /**
   * Whether `isbot` recognises a user agent; the tracker passes a memoised one (a user agent
   * repeats across hits, the pattern is long). Default: `isbotMatch` on every call.
   */
  isBot?: (userAgent: string) => boolean;
}

/** `isbot`'s verdict on a user agent. */
export const isBotUserAgent = (userAgent: string): boolean => isbotMatch(userAgent) !== null;

export interface HitContext {
  kind: 'open' | 'click';
  method: string;
  userAgent: string;
  /** The full client address (rules only; never stored). */
  ip: string;
  /** Unix seconds from the token. */
  issuedAt: number;
  nowMs: number;
  /** Clicks: the previous click of this copy (from the replica's memory), if any. */
  previousClick?: { atMs: number; linkIndex: number };
  linkIndex: number;
}

export interface MachineVerdict {
  machine: boolean;
  reason?: string;
}

const APPLE_MPP_AGENT = 'Mozilla/5.0';
/** Proxies that fetch images when the person opens the mail (not before). */
const VIEW_PROXIES = /GoogleImageProxy|YahooMailProxy/;

export function detectMachine(hit: HitContext, rules: MachineRules): MachineVerdict {
  if (hit.method === 'HEAD') return { machine: true, reason: 'head-request' };
  const ua = hit.userAgent.trim();
  if (hit.kind === 'open' && (ua === APPLE_MPP_AGENT || inRanges(hit.ip, rules.appleProxyRanges))) return { machine: true, reason: 'apple-mpp' };
  if (!VIEW_PROXIES.test(ua)) {
    if (ua === '') return { machine: true, reason: 'no-user-agent' };
    if ((rules.isBot ?? isBotUserAgent)(ua)) return { machine: true, reason: 'user-agent' };
  }
  if (rules.withinSeconds > 0 && hit.nowMs - hit.issuedAt * 1000 < rules.withinSeconds * 1000) return { machine: true, reason: 'too-soon' };
  const prev = hit.previousClick;
  if (hit.kind === 'click' && rules.clickBurstMs > 0 && prev && prev.linkIndex !== hit.linkIndex && hit.nowMs - prev.atMs < rules.clickBurstMs) {
    return { machine: true, reason: 'click-burst' };
  }
  return { machine: false };
}
