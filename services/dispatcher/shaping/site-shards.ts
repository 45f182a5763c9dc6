/**
 * Hot sites split into shards, each owning an exact share of the site's limit. The renderer
 * keys a dispatch record by its recipient domain's site (`gmail`), or by one shard of it
 * (`gmail#2`) when the site's shaping rule has `shards: n` (n > 1); each key lands on one
 * partition, so one dispatcher replica owns it. A replica shapes each key it owns on its own
 * bucket with that key's share of the site rule: rates divided by n, connections split so the
 * shares add up to the site's `maxConnections` exactly. However the partitions are spread over
 * replicas, the sum of the shares is the site's limit: exact without a shared store.
 *
 * A site's shard count is at most its `maxConnections` (each shard needs one connection).
 * Renderer (site-keys.ts) and dispatcher read the same shaping rules, so they agree on n. Pure.
 */
import { createHash } from 'node:crypto';
import { domainWindows, siteRule, type RateWindow, type ResolvedRule, type ShapingRules } from './shaping-rules.js';

/** Separates the site from the shard number in a record key: `gmail#2`. */
export const SHARD_SEPARATOR = '#';

/** Shards of `site`: its rule's `shards` (else `default`'s, else 1), clamped to [1, maxConnections]. */
export function siteShards(rules: ShapingRules, site: string): number {
  const own = rules.sites[site.toLowerCase()]?.shards ?? rules.sites.default?.shards ?? 1;
  return Math.max(1, Math.min(Math.floor(own), siteRule(rules, site).maxConnections));
}

/** Shard of a message within `n`: stable for the message id, spread evenly. */
export function shardOf(messageId: string, n: number): number {
  if (n <= 1) return 0;
  return createHash('sha1').update(messageId).digest().readUInt32BE(0) % n;
}

/** The record key of shard `shard` of `shards` of `site` (the site itself when unsharded). */
export function siteKeyOf(site: string, shard: number, shards: number): string {
  return shards > 1 ? `${site}${SHARD_SEPARATOR}${shard}` : site;
}

/** `gmail#2` → { site: 'gmail', shard: 2 }; `gmail` → { site: 'gmail' }. */
export function parseSiteKey(key: string): { site: string; shard?: number } {
  const at = key.lastIndexOf(SHARD_SEPARATOR);
  if (at <= 0) return { site: key };
  const n = key.slice(at + 1);
  if (!/^\d{1,6}$/.test(n)) return { site: key };
  return { site: key.slice(0, at), shard: Number(n) };
}

const shareOfWindows = (windows: readonly RateWindow[], shards: number): RateWindow[] => windows.map((w) => ({ limit: w.limit / shards, ms: w.ms }));

/**
 * The share of a site's rule that shard `shard` of `shards` owns: every rate window divided by
 * `shards`; `maxConnections` split as evenly as whole connections allow (the first
 * `maxConnections % shards` shards get one more), so the shares sum to the site's; messages
 * per connection unchanged.
 */
export function shardShare(rule: ResolvedRule, shard: number, shards: number): ResolvedRule {
  if (shards <= 1) return rule;
  const base = Math.floor(rule.maxConnections / shards);
  const maxConnections = Math.max(1, base + (shard < rule.maxConnections % shards ? 1 : 0));
  return { maxConnections, messagesPerConnection: rule.messagesPerConnection, windows: shareOfWindows(rule.windows, shards) };
}

/**
 * The rule for a shaping key's site as the dispatcher sees it: `gmail` → the site's rule;
 * `gmail#2` → shard 2's share of gmail's rule. The shaper calls this where it calls
 * `siteRule(rules, key.site)`, with `key.site` the site key of the record.
 */
export function siteKeyRule(rules: ShapingRules, siteKey: string): ResolvedRule {
  const { site, shard } = parseSiteKey(siteKey);
  const shards = siteShards(rules, site);
  if (shard === undefined || shards <= 1) return siteRule(rules, siteKey);
  return shardShare(siteRule(rules, site), shard, shards);
}

/**
 * A recipient domain's own rate windows under a site key: a sharded site spreads one domain's
 * messages over its shards (by message id), so each shard owns 1/n of the domain's rates too.
 * The shaper calls this where it calls `domainWindows(rules, domain)`.
 */
export function siteKeyDomainWindows(rules: ShapingRules, siteKey: string, domain: string): RateWindow[] | undefined {
  const own = domainWindows(rules, domain);
  if (!own) return undefined;
  const { site, shard } = parseSiteKey(siteKey);
  const shards = shard === undefined ? 1 : siteShards(rules, site);
  return shards > 1 ? shareOfWindows(own, shards) : own;
}

/** What the dispatcher does with a record once it has resolved the record's site. */
export type SiteKeyVerdict =
  /** The record's key is its site key: shape it under `shapingSite` (the key itself). */
  | { kind: 'owned'; shapingSite: string }
  /**
   * The key is not the site key (the renderer fell back to the domain when DNS failed, the
   * site's MX hosts or shard count changed since): sending it here would spend a share of the
   * site's limit this replica does not own. Produce the record again keyed `key` (to the same
   * topic), commit after the ack; the replica owning that key sends it.
   */
  | { kind: 'rekey'; key: string };

/**
 * Whether this replica owns a record with key `recordKey` whose domain resolved to `site`
 * (pure; the dispatcher calls it for records of mx routes, after resolving the site).
 */
export function siteKeyVerdict(recordKey: string, site: string, messageId: string, rules: ShapingRules): SiteKeyVerdict {
  const shards = siteShards(rules, site);
  const want = siteKeyOf(site, shardOf(messageId, shards), shards);
  if (recordKey === want) return { kind: 'owned', shapingSite: want };
  // Any shard of the site is owned by whoever owns its partition: the shard need not be the message's.
  const parsed = parseSiteKey(recordKey);
  if (shards > 1 && parsed.site === site && parsed.shard !== undefined && parsed.shard < shards) return { kind: 'owned', shapingSite: recordKey };
  return { kind: 'rekey', key: want };
}
