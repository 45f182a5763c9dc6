/**
 * Dispatcher metrics, fed by the events of the handler and the fleets (the core never imports
 * prom-client). Labels are bounded: host is a configured relay (later an MX host), priority,
 * outcome, close reason.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { DispatchHandler, DeliveryReport } from './dispatch-handler.js';
import type { FleetRegistry } from './fleet-registry.js';
import type { CloseReason } from './fleet-connection.js';
import type { BreakerRegistry, BreakerState } from './host-breaker.js';
import type { DuplicateWindow } from './duplicate-window.js';

export interface DispatcherParts {
  handler: DispatchHandler;
  fleets: FleetRegistry;
  breakers: BreakerRegistry;
  window: DuplicateWindow;
}

/** Gauge values of breaker states: alert on `> 0`. */
const BREAKER_STATE_VALUE: Record<BreakerState, number> = { closed: 0, 'half-open': 1, open: 2 };

export function instrumentDispatcher(registry: Registry, { handler, fleets, breakers, window }: DispatcherParts): void {
  const registers = [registry];
  const latency = new Histogram({
    name: 'postline_smtp_transaction_seconds',
    help: 'Time of one SMTP transaction (MAIL FROM to the reply after DATA) by destination host and outcome',
    labelNames: ['host', 'outcome'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers,
  });
  const outcomes = new Counter({
    name: 'postline_dispatch_outcomes_total',
    help: 'Recipient outcomes (sent, bounced, deferred, failed) by destination host and priority',
    labelNames: ['host', 'priority', 'outcome'],
    registers,
  });
  const sent = new Counter({ name: 'postline_dispatch_messages_sent_total', help: 'Dispatch records with at least one recipient sent, by priority', labelNames: ['priority'], registers });
  const reused = new Counter({
    name: 'postline_smtp_transactions_total',
    help: 'SMTP transactions by host and whether the connection was reused',
    labelNames: ['host', 'reused'],
    registers,
  });
  const invalid = new Counter({ name: 'postline_dispatch_invalid_records_total', help: 'Dispatch records that failed validation (dead-lettered)', labelNames: ['topic'], registers });
  const opened = new Counter({ name: 'postline_smtp_connections_opened_total', help: 'SMTP connections opened', labelNames: ['host'], registers });
  const closed = new Counter({ name: 'postline_smtp_connections_closed_total', help: 'SMTP connections closed, by reason', labelNames: ['host', 'reason'], registers });
  const connectFailures = new Counter({ name: 'postline_smtp_connect_failures_total', help: 'Failed attempts to open an SMTP connection', labelNames: ['host'], registers });
  const ceilings = new Counter({ name: 'postline_smtp_fleet_ceiling_total', help: 'Times a host capped its fleet (refused connection or 421)', labelNames: ['host'], registers });

  const fleetGauge = (name: string, help: string, pick: (s: ReturnType<FleetRegistry['stats']>[number]) => number): void => {
    new Gauge({
      name,
      help,
      labelNames: ['host'],
      registers,
      collect() {
        for (const s of fleets.stats()) this.set({ host: s.host }, pick(s));
      },
    });
  };
  fleetGauge('postline_smtp_fleet_connections', 'Open SMTP connections per destination host', (s) => s.size);
  fleetGauge('postline_smtp_fleet_busy_connections', 'SMTP connections carrying a message now', (s) => s.busy);
  fleetGauge('postline_smtp_fleet_waiting_messages', 'Messages waiting for a connection', (s) => s.waiting);
  fleetGauge('postline_smtp_fleet_cap', 'Most connections the fleet may open now (maximum or the host ceiling)', (s) => s.cap);

  new Gauge({
    name: 'postline_smtp_breaker_state',
    help: 'Circuit breaker of each destination host: 0 closed, 1 half-open (probing), 2 open (no new connections)',
    labelNames: ['host'],
    registers,
    collect() {
      for (const b of breakers.states()) this.set({ host: b.host }, BREAKER_STATE_VALUE[b.state]);
    },
  });
  const transitions = new Counter({ name: 'postline_smtp_breaker_transitions_total', help: 'Circuit breaker state changes by host and new state', labelNames: ['host', 'to'], registers });
  const fallback = new Counter({ name: 'postline_dispatch_fallback_total', help: 'Dispatch records that left through a fallback host of their route, by host', labelNames: ['host', 'priority'], registers });
  const duplicates = new Counter({
    name: 'postline_dispatch_duplicates_skipped_total',
    help: 'Recipients of redelivered dispatch records not sent again because the same attempt was already handled',
    labelNames: ['priority'],
    registers,
  });
  const rekeyed = new Counter({
    name: 'postline_dispatch_rekeyed_total',
    help: 'Mx-route dispatch records not keyed by their site (shard) key, produced again under it instead of sent here',
    labelNames: ['priority'],
    registers,
  });
  const dupWindow = new Histogram({
    name: 'postline_dispatch_duplicate_window_seconds',
    help: "Time from an SMTP 250 until the sent event is durable (until=recorded: a crash before it repeats the delivery) and until the offset commit (until=committed: a crash before it redelivers the record)",
    labelNames: ['until'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers,
  });
  breakers.on('transition', (host: string, _from: BreakerState, to: BreakerState) => transitions.inc({ host, to }));
  handler.on('duplicate', (priority: string, n: number) => duplicates.inc({ priority }, n));
  handler.on('rekey', (priority: string) => rekeyed.inc({ priority }));
  window.on('window', (until: string, ms: number) => dupWindow.observe({ until }, ms / 1000));

  handler.on('delivery', (d: DeliveryReport) => {
    if (d.fallback) fallback.inc({ host: d.host || 'none', priority: d.priority });
    const host = d.host || 'none';
    for (const o of d.outcomes) outcomes.inc({ host, priority: d.priority, outcome: o.kind }, o.recipients);
    if (d.outcomes.some((o) => o.kind === 'sent')) sent.inc({ priority: d.priority });
    if (d.latencyMs > 0) {
      latency.observe({ host, outcome: d.outcomes[0]?.kind ?? 'none' }, d.latencyMs / 1000);
      reused.inc({ host, reused: String(d.connectionReused) });
    }
  });
  handler.on('invalid', (topic: string) => invalid.inc({ topic }));
  fleets.on('opened', (host: string) => opened.inc({ host }));
  fleets.on('closed', (host: string, _conn: unknown, reason: CloseReason) => closed.inc({ host, reason }));
  fleets.on('connect-failed', (host: string) => connectFailures.inc({ host }));
  fleets.on('ceiling', (host: string) => ceilings.inc({ host }));
}
