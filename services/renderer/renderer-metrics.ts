/**
 * Prometheus metrics of the render stage, fed by the Renderer's events (the renderer itself
 * does not import prom-client). Labels are bounded: priority and failure code.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { EventEmitter } from 'node:events';
import type { RenderedInfo } from './renderer.js';
import type { DkimKeyStore } from '../../shared/dkim/key-store.js';
import type { KeyTable } from '../../shared/dkim/dkim-keys.js';
import type { KeyedDomain } from '../dispatcher/routing/site-keys.js';

/** `renderer` emits the Renderer's events: one Renderer, or every lane's forwarded to one emitter. */
export function instrumentRenderer(renderer: EventEmitter, registry: Registry): void {
  const registers = [registry];
  const rendered = new Counter({ name: 'postline_renderer_rendered_total', help: 'Messages rendered and handed to dispatch', labelNames: ['priority'], registers });
  const records = new Counter({
    name: 'postline_renderer_dispatch_records_total',
    help: 'Dispatch records produced (one per recipient domain)',
    labelNames: ['priority'],
    registers,
  });
  const failures = new Counter({ name: 'postline_renderer_failures_total', help: 'Records dead-lettered, by reason code', labelNames: ['code'], registers });
  const seconds = new Histogram({
    name: 'postline_renderer_render_seconds',
    help: 'Template rendering and MIME composition time per message (Kafka excluded)',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
    registers,
  });
  renderer.on('rendered', (info: RenderedInfo) => {
    rendered.inc({ priority: info.priority });
    records.inc({ priority: info.priority }, info.domains);
    seconds.observe(info.renderMs / 1000);
  });
  renderer.on('failed', (code: string) => failures.inc({ code }));
  // Domains are those of the keys directory: a bounded set.
  const signed = new Counter({ name: 'postline_renderer_dkim_signed_total', help: 'Messages DKIM-signed, by signing domain and algorithm', labelNames: ['domain', 'algorithm'], registers });
  const unsigned = new Counter({
    name: 'postline_renderer_dkim_unsigned_total',
    help: 'Messages sent unsigned although DKIM is configured: missing-key (no key for the From domain) or sign-failed',
    labelNames: ['reason'],
    registers,
  });
  renderer.on('signed', (s: { domain: string; algorithm: string }) => signed.inc({ domain: s.domain, algorithm: s.algorithm }));
  renderer.on('unsigned', (reason: string) => unsigned.inc({ reason }));
}

/** Gauges of the DKIM keys directory: keys loaded and problems found by the last reload (alert on > 0). */
export function instrumentKeyStore(store: DkimKeyStore, registry: Registry): void {
  const registers = [registry];
  const keys = new Gauge({ name: 'postline_renderer_dkim_keys', help: 'DKIM keys loaded from the keys directory', registers });
  const problems = new Gauge({ name: 'postline_renderer_dkim_key_problems', help: 'Problems (bad, weak or unreadable key files) found by the last read of the DKIM keys directory', registers });
  const update = (table: KeyTable): void => keys.set([...table.domains.values()].reduce((n, d) => n + d.keys.length, 0));
  update(store.current());
  problems.set(store.issues.length);
  store.on('reloaded', (table: KeyTable) => {
    update(table);
    problems.set(store.issues.length);
  });
  store.on('issues', (issues: string[]) => problems.set(issues.length));
}

/**
 * Dispatch records keyed by site, by outcome: `site`, or keyed by the domain because it receives
 * no mail (`no-mail`), its MX lookup failed (`dns-failed`) or took too long (`timeout`).
 */
export function instrumentSiteKeys(siteKeys: EventEmitter, registry: Registry): void {
  const keyed = new Counter({
    name: 'postline_renderer_site_keys_total',
    help: 'Recipient domains keyed for dispatch with a routing file: by site (site), or by the domain itself (no-mail, dns-failed, timeout)',
    labelNames: ['outcome'],
    registers: [registry],
  });
  siteKeys.on('keyed', (k: KeyedDomain) => keyed.inc({ outcome: k.outcome }));
}
