/**
 * Dispatcher metrics, fed by the events of the handler and the fleets (the core never imports
 * prom-client). Labels are bounded: host is a configured relay (later an MX host), priority,
 * outcome, close reason.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { DispatchHandler, DeliveryReport } from './dispatch-handler.js';
import type { FleetRegistry } from './fleet-registry.js';
import type { CloseReason } from './fleet-connection.js';

export function instrumentDispatcher(registry: Registry, handler: DispatchHandler, fleets: FleetRegistry): void {
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

  handler.on('delivery', (d: DeliveryReport) => {
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
