/**
 * Sites: MX host names grouped by mailbox provider, so that fleets and limits count per
 * (source address, site) rather than per recipient domain — ten thousand domains hosted at one
 * provider are one destination to that provider. Pure.
 */
import { getDomain } from 'tldts';

/** Host pattern (`*.google.com` or an exact host name) → site name. */
export type SiteOverrides = Record<string, string>;

/** The built-in groups: the big mailbox providers' MX host names. */
export const DEFAULT_SITES: SiteOverrides = {
  '*.google.com': 'gmail',
  '*.googlemail.com': 'gmail',
  '*.mail.protection.outlook.com': 'outlook',
  '*.olc.protection.outlook.com': 'outlook',
  '*.hotmail.com': 'outlook',
  '*.yahoodns.net': 'yahoo',
  '*.icloud.com': 'icloud',
  '*.mail.me.com': 'icloud',
};

function normalise(host: string): string {
  return host.trim().toLowerCase().replace(/\.$/, '');
}

function matches(pattern: string, host: string): boolean {
  const p = normalise(pattern);
  if (p.startsWith('*.')) return host.endsWith(p.slice(1));
  return host === p;
}

/** The most specific matching pattern (exact beats wildcard, longer beats shorter). */
function lookup(table: SiteOverrides, host: string): string | undefined {
  let best: { len: number; site: string } | undefined;
  for (const [pattern, site] of Object.entries(table)) {
    if (!matches(pattern, host)) continue;
    const len = pattern.startsWith('*.') ? pattern.length - 2 : pattern.length + 1000;
    if (!best || len > best.len) best = { len, site };
  }
  return best?.site;
}

/**
 * The site of an MX host: an override from the routing file, else a built-in provider group,
 * else the host's registrable domain (`mx1.example.net` → `example.net`; an IP literal or a
 * name without a public suffix is its own site).
 */
export function siteOf(mxHost: string, overrides: SiteOverrides = {}): string {
  const host = normalise(mxHost);
  return lookup(overrides, host) ?? lookup(DEFAULT_SITES, host) ?? getDomain(host, { allowPrivateDomains: false }) ?? host;
}

/**
 * The site of a domain from its ordered MX hosts: that of the most preferred host — among equal
 * preferences the alphabetically first, so the answer does not depend on the shuffle or on the
 * order of the DNS answer.
 */
export function siteOfHosts(hosts: ReadonlyArray<{ name: string; preference: number }>, overrides: SiteOverrides = {}): string {
  const best = Math.min(...hosts.map((h) => h.preference));
  const first = hosts.filter((h) => h.preference === best).map((h) => h.name).sort()[0];
  return siteOf(first, overrides);
}
