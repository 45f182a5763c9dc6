/**
 * Dispatch record keys by site, for the renderer: a record keyed by its recipient domain's site
 * (rather than the domain) lands on the partition — and so the dispatcher replica — that owns the
 * site, so per-site limits are exact without a shared store; a hot site split into `n` shards is
 * keyed `site#k` (k from the message id), each shard owning its share of the site's limit. A
 * domain whose MX hosts cannot be resolved now keeps its own name as the key (its mail is then
 * deferred by the dispatcher, which resolves again). The DNS answers are the cached ones of the
 * DnsResolver, so keying costs no query per message.
 */
import { createHash } from 'node:crypto';
import { DnsTempError, type DnsResolver } from './dns-resolver.js';
import { planMx } from './mx-plan.js';
import { siteOfHosts, type SiteOverrides } from './sites.js';

export interface SiteKeyOptions {
  resolver: DnsResolver;
  sites?: SiteOverrides;
  /** Shards of a site (default 1: the site is the key). */
  shardsOf?: (site: string) => number;
}

/** Shard of a message within `n`: stable for the message id, spread evenly. */
export function shardOf(messageId: string, n: number): number {
  if (n <= 1) return 0;
  return createHash('sha1').update(messageId).digest().readUInt32BE(0) % n;
}

export class SiteKeys {
  constructor(private readonly opts: SiteKeyOptions) {}

  /** The site of a domain (the domain itself when DNS cannot tell now, or it receives no mail). */
  async siteOf(domain: string): Promise<string> {
    try {
      const plan = planMx(domain, await this.opts.resolver.mx(domain), { maxHosts: 10, random: () => 0 });
      return plan.kind === 'hosts' ? siteOfHosts(plan.hosts, this.opts.sites) : domain;
    } catch (err) {
      if (err instanceof DnsTempError) return domain;
      throw err;
    }
  }

  /** The dispatch record key of each domain of one message: `site`, or `site#k` for a sharded site. */
  async keysFor(domains: readonly string[], messageId: string): Promise<Map<string, string>> {
    const keys = new Map<string, string>();
    await Promise.all(
      domains.map(async (domain) => {
        const site = await this.siteOf(domain);
        const n = site === domain ? 1 : (this.opts.shardsOf?.(site) ?? 1);
        keys.set(domain, n > 1 ? `${site}#${shardOf(messageId, n)}` : site);
      }),
    );
    return keys;
  }
}
