/** Scheduler metrics, fed by the scheduler's events. */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { EventEmitter } from 'node:events';

/** `scheduler` emits the Scheduler's events: one Scheduler, or every lane's forwarded to one emitter. */
export function instrumentScheduler(scheduler: EventEmitter, registry: Registry): void {
  const registers = [registry];
  const moved = new Counter({ name: 'postline_retry_records_moved_total', help: 'Retry records moved back to dispatch', labelNames: ['topic'], registers });
  const invalid = new Counter({ name: 'postline_retry_records_invalid_total', help: 'Undecodable retry records sent to email.dead', labelNames: ['topic'], registers });
  const held = new Gauge({ name: 'postline_retry_hold_seconds', help: 'How long a retry partition is held until its head is due', labelNames: ['topic', 'partition'], registers });
  scheduler.on('moved', (topic: string, n: number) => moved.inc({ topic }, n));
  scheduler.on('invalid', (topic: string) => invalid.inc({ topic }));
  scheduler.on('held', (topic: string, partition: number, ms: number) => held.set({ topic, partition: String(partition) }, ms / 1000));
}
