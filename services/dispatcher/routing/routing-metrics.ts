/**
 * Metrics of direct delivery, fed by the events of the DNS resolver, the MTA-STS policies and
 * the fleets (the core never imports prom-client). Labels are bounded: record type, outcome,
 * policy status and mode, site, source address (the pools' configured addresses).
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { DeliveryReport, DispatchHandler } from '../dispatch-handler.js';
import type { FleetRegistry } from '../fleet-registry.js';
import type { DnsResolver } from './dns-resolver.js';
import type { MtaStsPolicies } from './mta-sts.js';

export function instrumentRouting(registry: Registry, parts: { resolver: DnsResolver; mtaSts: MtaStsPolicies; fleets: FleetRegistry; handler: DispatchHandler }): void {
  const registers = [registry];
  const queries = new Counter({ name: 'postline_dns_queries_total', help: 'DNS queries sent, by record type and outcome (ok, nodata, nxdomain, servfail, refused, timeout, malformed, truncated, error)', labelNames: ['type', 'outcome'], registers });
  const cache = new Counter({ name: 'postline_dns_cache_lookups_total', help: 'DNS lookups by record type and how they were answered (hit: cache; shared: a query already in flight; miss: a new query)', labelNames: ['type', 'result'], registers });
  const policies = new Counter({ name: 'postline_mta_sts_policies_total', help: 'MTA-STS policy lookups (after the cache) by status (found, renewed, not_found, errored) and mode', labelNames: ['status', 'mode'], registers });
  const violations = new Counter({ name: 'postline_mta_sts_violations_total', help: 'MX hosts not listed by the domain\'s MTA-STS policy, by mode (enforce: not used; testing: used anyway)', labelNames: ['mode'], registers });
  const refusals = new Counter({
    name: 'postline_dispatch_route_refusals_total',
    help: 'Recipients of records that could not be routed, by code (DNS_NXDOMAIN, DNS_NULL_MX, DNS_NO_ADDRESS, DNS_TEMPFAIL, POOL_UNAVAILABLE, MTA_STS_NO_VALID_MX, SHAPING_DEFERRED, UNKNOWN_POOL) and outcome',
    labelNames: ['code', 'outcome'],
    registers,
  });
  parts.handler.on('delivery', (d: DeliveryReport) => {
    if (d.route !== 'none') return;
    for (const o of d.outcomes) refusals.inc({ code: o.code, outcome: o.kind }, o.recipients);
  });
  parts.resolver.on('query', (type: string, outcome: string) => queries.inc({ type, outcome }));
  parts.resolver.on('cache', (type: string, result: string) => cache.inc({ type, result }));
  parts.mtaSts.on('policy', (_domain: string, status: string, mode: string) => policies.inc({ status, mode }));
  parts.mtaSts.on('violation', (_domain: string, _host: string, mode: string) => violations.inc({ mode }));

  const sum = (pick: (s: ReturnType<FleetRegistry['stats']>[number]) => number) =>
    function (this: Gauge) {
      this.reset();
      const by = new Map<string, { site: string; source: string; n: number }>();
      for (const s of parts.fleets.stats()) {
        if (!s.site || !s.source) continue;
        const k = `${s.site}\u0000${s.source}`;
        const e = by.get(k) ?? { site: s.site, source: s.source, n: 0 };
        e.n += pick(s);
        by.set(k, e);
      }
      for (const e of by.values()) this.set({ site: e.site, source: e.source }, e.n);
    };
  new Gauge({ name: 'postline_smtp_site_connections', help: 'Open SMTP connections per (site, source address) over mx routes', labelNames: ['site', 'source'], registers, collect: sum((s) => s.size) });
  new Gauge({ name: 'postline_smtp_site_busy_connections', help: 'SMTP connections carrying a message per (site, source address)', labelNames: ['site', 'source'], registers, collect: sum((s) => s.busy) });
  new Gauge({ name: 'postline_smtp_site_waiting_messages', help: 'Messages waiting for a connection per (site, source address)', labelNames: ['site', 'source'], registers, collect: sum((s) => s.waiting) });
}
