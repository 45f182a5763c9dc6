/**
 * Prometheus metrics of the send API, fed by the events the app and the acceptor emit.
 * Labels are bounded: route patterns, methods, status codes, priorities and error codes.
 */
import type { EventEmitter } from 'node:events';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { Acceptor } from './acceptor.js';
import type { ResponseObservation } from './app.js';

export function instrumentIngest(acceptor: Acceptor, observer: EventEmitter, registry: Registry): void {
  const registers = [registry];
  const seconds = new Histogram({
    name: 'postline_ingest_request_seconds',
    help: 'Time to answer a request, by route, method and status',
    labelNames: ['route', 'method', 'status'],
    buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });
  const accepted = new Counter({ name: 'postline_ingest_accepted_total', help: 'Messages durably queued on email.requested', labelNames: ['priority'], registers });
  const replayed = new Counter({ name: 'postline_ingest_idempotent_replays_total', help: 'Requests answered from an earlier Idempotency-Key without sending', registers });
  const rejected = new Counter({ name: 'postline_ingest_rejected_total', help: 'Messages refused, by error code', labelNames: ['code'], registers });
  const late = new Counter({
    name: 'postline_ingest_late_acks_total',
    help: 'Messages acknowledged by the broker after their request was answered 503 (a client retry without Idempotency-Key sends them twice)',
    registers,
  });
  const slices = new Counter({
    name: 'postline_ingest_batch_slices_total',
    help: 'Batch slices (50 items) after the first of their request, by turn: own (a slice of every batch in flight per turn of the event loop) or shared (one slice per turn between them all, giving way to a more urgent message that came in within 3 s)',
    labelNames: ['turn'],
    registers,
  });
  observer.on('response', (o: ResponseObservation) => seconds.observe({ route: o.route, method: o.method, status: String(o.status) }, o.seconds));
  acceptor.on('accepted', (priority: string) => accepted.inc({ priority }));
  acceptor.on('replayed', () => replayed.inc());
  acceptor.on('rejected', (code: string) => rejected.inc({ code }));
  acceptor.on('late-ack', () => late.inc());
  acceptor.on('slice', (gaveWay: boolean) => slices.inc({ turn: gaveWay ? 'shared' : 'own' }));
}
