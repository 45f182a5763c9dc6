/**
 * Dispatch record keys by site, for the renderer: a record keyed by its recipient domain's site
 * (rather than the domain) lands on the partition — and so the dispatcher replica — that owns the
 * site, so per-site limits are exact without a shared store; a hot site split into `n` shards is
 * keyed `site#k` (k from the message id), each shard owning its share of the site's limit
 * (`shaping/site-shards.ts`). The DNS answers are the cached ones of the DnsResolver, so keying
 * costs no query per message.
 *
 * Keying never fails and never holds a message long: a domain whose MX hosts cannot be resolved
 * now (SERVFAIL, timeout, no answer within `maxWaitMs`, any error) keeps its own name as the key
 * — the dispatcher resolves again and re-keys it — and a domain that receives no mail (NXDOMAIN,
 * null MX) keeps its name too (the dispatcher bounces it). A failed or slow domain is keyed by
 * its name without asking again for `failureHoldMs`, so a domain whose DNS is down costs its
 * messages no wait (the resolver does not cache failures). Emits 'keyed' ({ domain, outcome })
 * per domain for metrics: outcome 'site', 'no-mail', 'dns-failed' or 'timeout'.
 */
import { EventEmitter } from 'node:events';
import type { DnsResolver } from './dns-resolver.js';
import { planMx } from './mx-plan.js';
import { siteOfHosts, type SiteOverrides } from './sites.js';
import { shardOf, siteKeyOf } from '../shaping/site-shards.js';

export { shardOf } from '../shaping/site-shards.js';

export interface SiteKeyOptions {
  resolver: Pick<DnsResolver, 'mx'>;
  sites?: SiteOverrides;
  /** Shards of a site (default 1: the site is the key); `siteShards(rules, site)` in the renderer. */
  shardsOf?: (site: string) => number;
  /** Longest wait for a domain's MX answer before keying it by its name (default 1000 ms); the lookup goes on and fills the cache. */
  maxWaitMs?: number;
  /** How long a domain whose lookup failed or was slow is keyed by its name without waiting again (default 30 s). */
  failureHoldMs?: number;
  now?: () => number;
}

export type SiteKeyOutcome = 'site' | 'no-mail' | 'dns-failed' | 'timeout';

export interface KeyedDomain {
  domain: string;
  outcome: SiteKeyOutcome;
  /** The site when outcome is 'site', else the domain. */
  site: string;
}

const TIMED_OUT = Symbol('timeout');
/** Failed domains remembered at most (the oldest go first). */
const MAX_HELD = 10_000;

export class SiteKeys extends EventEmitter {
  /** domain → until when it is keyed by its name, and why. */
  private readonly held = new Map<string, { until: number; outcome: SiteKeyOutcome }>();
  private readonly now: () => number;

  constructor(private readonly opts: SiteKeyOptions) {
    super();
    this.now = opts.now ?? Date.now;
  }

  /** The site of a domain and how it was found; never rejects. */
  async resolve(domain: string): Promise<KeyedDomain> {
    const held = this.held.get(domain);
    if (held && held.until > this.now()) return { domain, outcome: held.outcome, site: domain };
    const keyed = await this.lookup(domain);
    if (keyed.outcome === 'dns-failed' || keyed.outcome === 'timeout') {
      this.held.delete(domain);
      this.held.set(domain, { until: this.now() + (this.opts.failureHoldMs ?? 30_000), outcome: keyed.outcome });
      if (this.held.size > MAX_HELD) this.held.delete(this.held.keys().next().value!);
    } else if (held) this.held.delete(domain);
    return keyed;
  }

  private async lookup(domain: string): Promise<KeyedDomain> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const lookup = this.opts.resolver.mx(domain);
      // The lookup may reject after the race is lost: nobody awaits it then.
      lookup.catch(() => undefined);
      const wait = new Promise<typeof TIMED_OUT>((resolve) => {
        timer = setTimeout(() => resolve(TIMED_OUT), this.opts.maxWaitMs ?? 1000);
        timer.unref();
      });
      const answer = await Promise.race([lookup, wait]);
      if (answer === TIMED_OUT) return { domain, outcome: 'timeout', site: domain };
      const plan = planMx(domain, answer, { maxHosts: 10, random: () => 0 });
      if (plan.kind !== 'hosts') return { domain, outcome: 'no-mail', site: domain };
      return { domain, outcome: 'site', site: siteOfHosts(plan.hosts, this.opts.sites) };
    } catch {
      // Whatever went wrong, the message goes on keyed by its domain; the dispatcher decides.
      return { domain, outcome: 'dns-failed', site: domain };
    } finally {
      clearTimeout(timer);
    }
  }

  /** The site of a domain (the domain itself when DNS cannot tell now, or it receives no mail). */
  async siteOf(domain: string): Promise<string> {
    return (await this.resolve(domain)).site;
  }

  /** The dispatch record key of each domain of one message: `site`, or `site#k` for a sharded site. */
  async keysFor(domains: readonly string[], messageId: string): Promise<Map<string, string>> {
    const keys = new Map<string, string>();
    await Promise.all(
      domains.map(async (domain) => {
        const keyed = await this.resolve(domain);
        this.emit('keyed', keyed);
        if (keyed.outcome !== 'site') {
          keys.set(domain, domain);
          return;
        }
        const n = this.opts.shardsOf?.(keyed.site) ?? 1;
        keys.set(domain, siteKeyOf(keyed.site, shardOf(messageId, n), n));
      }),
    );
    return keys;
  }
}
