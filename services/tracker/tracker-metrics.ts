/** Prometheus metrics of the tracker, subscribed to the app's observer and the event buffer. */
import type { EventEmitter } from 'node:events';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { EventBuffer } from './event-buffer.js';

export function instrumentTracker(observer: EventEmitter, buffer: EventBuffer, registry: Registry): void {
  const registers = [registry];
  const hits = new Counter({ name: 'postline_tracker_hits_total', help: 'Verified opens and clicks, by kind (open, click) and machine (true, false)', labelNames: ['kind', 'machine'], registers });
  const refused = new Counter({ name: 'postline_tracker_refused_total', help: 'Requests answered 404 because their token did not verify, by kind', labelNames: ['kind'], registers });
  const dropped = new Counter({ name: 'postline_tracker_events_dropped_total', help: 'Events dropped because the in-memory queue was full (Kafka unavailable or too slow)', labelNames: ['reason'], registers });
  const failures = new Counter({ name: 'postline_tracker_publish_failures_total', help: 'Failed attempts to produce an event (it is kept and sent again)', registers });
  new Gauge({ name: 'postline_tracker_events_queued', help: 'Events held in memory, waiting for Kafka or being sent', registers, collect() { this.set(buffer.size); } });
  observer.on('hit', (kind: string, machine: boolean) => hits.inc({ kind, machine: String(machine) }));
  observer.on('refused', (kind: string) => refused.inc({ kind }));
  buffer.on('dropped', (reason: string) => dropped.inc({ reason }));
  buffer.on('failed', () => failures.inc());
}
