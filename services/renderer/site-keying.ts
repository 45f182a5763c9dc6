/**
 * Dispatch record keys by site (issue 12, "limits are exact across dispatcher replicas"): with a
 * routing file, the renderer keys each dispatch record of a message whose pool leaves through
 * an `mx` route by its recipient domain's site (`gmail`), or a shard of a hot site (`gmail#2`),
 * so the one dispatcher replica owning that key shapes the site (or its share of it). Messages
 * of relay pools, and every message without a routing file, keep the domain as the key.
 * The site comes from `SiteKeys` (services/dispatcher/routing/site-keys.ts), which never fails
 * a message: a domain DNS cannot resolve now is keyed by its name (counted).
 */
import type { Priority } from '../../shared/config.js';
import { DnsResolver } from '../dispatcher/routing/dns-resolver.js';
import { choosePool } from '../dispatcher/routing/pools.js';
import type { RoutingFile } from '../dispatcher/routing/routes-file.js';
import { SiteKeys } from '../dispatcher/routing/site-keys.js';
import type { ShapingRules } from '../dispatcher/shaping/shaping-rules.js';
import { siteShards } from '../dispatcher/shaping/site-shards.js';

/** The message fields the key depends on. */
export interface KeyedMessage {
  messageId: string;
  tenant: string;
  priority: Priority;
  pool?: string;
}

/** Record keys of one message's domains; undefined: key each record by its domain. */
export interface RecordKeys {
  keysFor(msg: KeyedMessage, domains: readonly string[]): Promise<ReadonlyMap<string, string> | undefined>;
}

/** Whether the message's pool leaves through an mx route (an unknown pool: no, the dispatcher dead-letters it). */
export function usesMxRoute(msg: KeyedMessage, routing: Pick<RoutingFile, 'choose' | 'pools' | 'routes'>): boolean {
  const decision = choosePool(msg, routing.choose, new Set(Object.keys(routing.pools)));
  if (!('pool' in decision)) return false;
  const route = routing.routes[routing.pools[decision.pool]?.route ?? ''];
  return route?.kind === 'mx';
}

/** Site keys for the messages of mx-route pools, domain keys for the rest. */
export function siteRecordKeys(routing: Pick<RoutingFile, 'choose' | 'pools' | 'routes'>, siteKeys: Pick<SiteKeys, 'keysFor'>): RecordKeys {
  return {
    keysFor: async (msg, domains) => (usesMxRoute(msg, routing) ? siteKeys.keysFor(domains, msg.messageId) : undefined),
  };
}

/**
 * The renderer's SiteKeys: its own DNS resolver and cache with the routing file's DNS settings
 * (the dispatcher's are in another process), the file's site overrides, shard counts from the
 * shaping rules the dispatcher reads too.
 */
export function openSiteKeys(routing: RoutingFile, rules: ShapingRules, opts: { maxWaitMs?: number } = {}): SiteKeys {
  const { servers, timeoutMs, ttlFloorSeconds, ttlCeilingSeconds } = routing.dns;
  const resolver = new DnsResolver({ servers, timeoutMs, ttlFloorSeconds, ttlCeilingSeconds });
  return new SiteKeys({ resolver, sites: routing.sites, shardsOf: (site) => siteShards(rules, site), ...opts });
}
