/**
 * MTA-STS (RFC 8461) policies of recipient domains: looked up with mailauth's `getPolicy` (the
 * `_mta-sts` TXT record through our resolver, the policy over HTTPS) and cached until the
 * policy's `max_age` runs out; a domain without a policy is asked again after `negativeTtlMs`.
 * A failed refresh keeps the policy in hand (mailauth's rule, and the RFC's). Hosts are matched
 * with mailauth's `validateMx`.
 *
 * Emits 'policy' (domain, status, mode) per fetch and 'violation' (domain, host, mode) for an
 * MX host the policy does not list, for metrics and logs.
 */
import { EventEmitter } from 'node:events';
import { getPolicy, validateMx } from 'mailauth/lib/mta-sts.js';
import type { MTASTSPolicy } from 'mailauth';

export type MtaStsMode = 'enforce' | 'testing' | 'none';

export interface MtaStsOptions {
  /** A `(name, type)` lookup in node:dns's shape (DnsResolver.lookupFunction()). */
  lookup: (name: string, type: string) => Promise<unknown[]>;
  /** How long "no policy" (or an unusable one) is remembered. */
  negativeTtlMs: number;
  now?: () => number;
  /** Policies kept at most; the oldest go first (default 100,000). */
  maxEntries?: number;
  /** Replaces mailauth's getPolicy (tests of the cache only). */
  fetch?: typeof getPolicy;
}

interface Entry {
  policy: MTASTSPolicy;
  expiresAt: number;
}

export class MtaStsPolicies extends EventEmitter {
  private readonly cache = new Map<string, Entry>();
  private readonly inFlight = new Map<string, Promise<MTASTSPolicy>>();
  private readonly now: () => number;

  constructor(private readonly opts: MtaStsOptions) {
    super();
    this.now = opts.now ?? Date.now;
  }

  /** The domain's policy (mode `none` when it has none). Never throws. */
  async policyFor(domain: string): Promise<MTASTSPolicy> {
    const key = domain.toLowerCase();
    const cached = this.cache.get(key);
    if (cached && cached.expiresAt > this.now()) return cached.policy;
    const running = this.inFlight.get(key);
    if (running) return running;
    const p = this.refresh(key, cached?.policy);
    this.inFlight.set(key, p);
    try {
      return await p;
    } finally {
      this.inFlight.delete(key);
    }
  }

  /** Whether `host` may receive the domain's mail under `policy` (always true without a policy). */
  allows(domain: string, host: string, policy: MTASTSPolicy): boolean {
    const result = validateMx(host, policy);
    if (!result.valid) this.emit('violation', domain, host, policy.mode);
    return result.valid;
  }

  private async refresh(domain: string, known: MTASTSPolicy | undefined): Promise<MTASTSPolicy> {
    const fetch = this.opts.fetch ?? getPolicy;
    let policy: MTASTSPolicy;
    let status: string;
    try {
      const r = await fetch(domain, known, { resolver: this.opts.lookup as never });
      policy = r.policy;
      status = r.status;
    } catch (err) {
      policy = known ?? { id: false, mode: 'none' };
      status = 'errored';
      void err;
    }
    const maxAgeMs = policy.mode !== 'none' && typeof policy.maxAge === 'number' ? policy.maxAge * 1000 : this.opts.negativeTtlMs;
    this.cache.delete(domain); // re-inserted last: the Map's order is the age order
    this.cache.set(domain, { policy, expiresAt: this.now() + maxAgeMs });
    if (this.cache.size > (this.opts.maxEntries ?? 100_000)) this.cache.delete(this.cache.keys().next().value!);
    this.emit('policy', domain, status, policy.mode);
    return policy;
  }
}
