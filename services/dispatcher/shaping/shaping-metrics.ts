/**
 * Prometheus metrics of traffic shaping, warm-up and auto-pause, fed by the shaper's events and
 * read from its state at scrape time (the shaper never imports prom-client). Labels are bounded:
 * `source` is a pool address from the routing file; `site` is a site with a rule of its own in
 * the shaping rules (gmail, outlook, …) and `other` for every other site (a gauge then shows the
 * most restricted of them).
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { TrafficShaper } from './shaper.js';
import { parseSiteKey } from './site-shards.js';

export function instrumentShaper(registry: Registry, shaper: TrafficShaper): void {
  const registers = [registry];
  const named = new Set(shaper.siteNames());
  // A shard's key (`gmail#2`) is labelled by its site: labels stay bounded by the named sites.
  const site = (s: string): string => {
    const plain = parseSiteKey(s).site;
    return named.has(plain) ? plain : 'other';
  };

  const perSource = <T extends { source: string; site: string }>(pick: (x: T) => number, rows: T[]): Map<string, { source: string; site: string; v: number }> => {
    const out = new Map<string, { source: string; site: string; v: number }>();
    for (const r of rows) {
      const labels = { source: r.source, site: site(r.site) };
      const k = `${labels.source}|${labels.site}`;
      const v = pick(r);
      const prev = out.get(k);
      if (!prev || v < prev.v) out.set(k, { ...labels, v });
    }
    return out;
  };

  new Gauge({
    name: 'postline_shaping_rate_limit',
    help: 'Messages per second allowed now per (source address, site), adaptive back-off included (-1: no rate limit)',
    labelNames: ['source', 'site'],
    registers,
    collect() {
      this.reset();
      for (const r of perSource((x) => (Number.isFinite(x.perSecond) ? x.perSecond : -1), shaper.current()).values()) this.set({ source: r.source, site: r.site }, r.v);
    },
  });
  new Gauge({
    name: 'postline_shaping_connection_limit',
    help: 'Connections allowed now per (source address, site), adaptive back-off included',
    labelNames: ['source', 'site'],
    registers,
    collect() {
      this.reset();
      for (const r of perSource((x) => x.maxConnections, shaper.current()).values()) this.set({ source: r.source, site: r.site }, r.v);
    },
  });
  new Gauge({
    name: 'postline_shaping_factor',
    help: 'Share of the shaping rule in force per (source address, site): 1 at the rule, lower after throttling replies',
    labelNames: ['source', 'site'],
    registers,
    collect() {
      this.reset();
      for (const r of perSource((x) => x.factor, shaper.current()).values()) this.set({ source: r.source, site: r.site }, r.v);
    },
  });
  const wait = new Histogram({
    name: 'postline_shaping_wait_seconds',
    help: 'Time a message waited for its send token, by site and priority',
    labelNames: ['site', 'priority'],
    buckets: [0, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });
  const deferrals = new Counter({
    name: 'postline_shaping_deferrals_total',
    help: 'Messages deferred to the retry tiers because no send token was available in time (wait-too-long) or too many were waiting (queue-full)',
    labelNames: ['site', 'priority', 'reason'],
    registers,
  });
  const throttles = new Counter({ name: 'postline_shaping_throttles_total', help: 'Throttling replies seen, by site and kind', labelNames: ['site', 'reason'], registers });
  const changes = new Counter({ name: 'postline_shaping_changes_total', help: 'Adaptive limit changes, by site and direction (throttled, recovered)', labelNames: ['site', 'reason'], registers });
  new Gauge({
    name: 'postline_warmup_sent',
    help: 'Messages sent today (UTC) through a source address with a warm-up plan, as this replica counts them',
    labelNames: ['source'],
    registers,
    collect() {
      this.reset();
      for (const u of shaper.warmupUsage()) this.set({ source: u.source }, u.sent);
    },
  });
  new Gauge({
    name: 'postline_warmup_cap',
    help: 'Today\'s (UTC) warm-up cap of a source address (-1: the plan has ended, no cap)',
    labelNames: ['source'],
    registers,
    collect() {
      this.reset();
      for (const u of shaper.warmupUsage()) this.set({ source: u.source }, Number.isFinite(u.cap) ? u.cap : -1);
    },
  });
  const known = new Set<string>();
  new Gauge({
    name: 'postline_source_paused',
    help: 'A source address (kind=source) or pool (kind=pool) taken out of rotation by its bounce rate: 1 paused, 0 not',
    labelNames: ['source', 'kind'],
    registers,
    collect() {
      const paused = new Set(shaper.paused().map((p) => `${p.kind}|${p.target}`));
      for (const k of new Set([...known, ...paused])) {
        known.add(k);
        const [kind, source] = [k.slice(0, k.indexOf('|')), k.slice(k.indexOf('|') + 1)];
        this.set({ source, kind }, paused.has(k) ? 1 : 0);
      }
    },
  });
  const pauses = new Counter({ name: 'postline_source_pauses_total', help: 'Times a source address or pool was paused by its bounce rate', labelNames: ['kind'], registers });

  shaper.on('admitted', (e) => wait.observe({ site: site(e.site), priority: e.priority }, e.waitedMs / 1000));
  shaper.on('deferred', (e) => deferrals.inc({ site: site(e.site), priority: e.priority, reason: e.reason }));
  shaper.on('throttle', (e) => throttles.inc({ site: site(e.site), reason: e.reason }));
  shaper.on('shaping-change', (e) => changes.inc({ site: site(e.site), reason: e.reason.startsWith('throttled') ? 'throttled' : 'recovered' }));
  shaper.on('source-paused', (e) => {
    known.add(`${e.kind}|${e.target}`);
    pauses.inc({ kind: e.kind });
  });

  // Sending domains (issue 13): labelled by the ones that were ever paused here (a few), not by every domain.
  const knownSenders = new Map<string, { tenant: string; domain: string }>();
  new Gauge({
    name: 'postline_sender_paused',
    help: 'A tenant\'s sending domain paused by its hard-bounce or complaint rate (its mail deferred with SENDER_PAUSED): 1 paused, 0 not',
    labelNames: ['tenant', 'domain'],
    registers,
    collect() {
      const paused = new Set(shaper.pausedSenders().map((p) => `${p.tenant}\u0000${p.domain}`));
      for (const p of shaper.pausedSenders()) knownSenders.set(`${p.tenant}\u0000${p.domain}`, { tenant: p.tenant, domain: p.domain });
      for (const [k, labels] of knownSenders) this.set(labels, paused.has(k) ? 1 : 0);
    },
  });
  const senderPauses = new Counter({ name: 'postline_sender_pauses_total', help: 'Times a sending domain was paused, by the rate that passed its threshold', labelNames: ['reason'], registers });
  shaper.on('sender-paused', (e) => senderPauses.inc({ reason: e.reason }));
}
