/** Scheduler metrics, fed by the scheduler's events. */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { EventEmitter } from 'node:events';

/** `scheduler` emits the Scheduler's events: one Scheduler, or every lane's forwarded to one emitter. */
export function instrumentScheduler(scheduler: EventEmitter, registry: Registry): void {
  const registers = [registry];
  const moved = new Counter({ name: 'postline_retry_records_moved_total', help: 'Retry records moved back to dispatch', labelNames: ['topic'], registers });
  const invalid = new Counter({ name: 'postline_retry_records_invalid_total', help: 'Undecodable retry records sent to email.dead', labelNames: ['topic'], registers });
  const held = new Gauge({ name: 'postline_retry_hold_seconds', help: 'How long a retry partition is held until its head is due', labelNames: ['topic', 'partition'], registers });
  const cancelled = new Counter({ name: 'postline_retry_records_cancelled_total', help: 'Retry records dropped because their message was cancelled', labelNames: ['topic'], registers });
  scheduler.on('cancelled', (topic: string, n: number) => cancelled.inc({ topic }, n));
  scheduler.on('moved', (topic: string, n: number) => moved.inc({ topic }, n));
  scheduler.on('invalid', (topic: string) => invalid.inc({ topic }));
  scheduler.on('held', (topic: string, partition: number, ms: number) => held.set({ topic, partition: String(partition) }, ms / 1000));
}

/** The scheduled lane's metrics: how many wait, how late they leave, how many were cancelled. */
export function instrumentScheduledLane(lane: EventEmitter, registry: Registry): void {
  const registers = [registry];
  const size = new Gauge({ name: 'postline_scheduled_messages', help: 'Scheduled messages this replica holds (not yet released or cancelled)', registers });
  const bodies = new Gauge({ name: 'postline_scheduled_body_bytes', help: 'Bytes of scheduled request bodies held in memory (those due within schedule.horizonMs)', registers });
  const lateness = new Histogram({
    name: 'postline_scheduled_release_lateness_seconds',
    help: 'How long after its sendAt a scheduled request was acknowledged on its request lane',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 30],
    registers,
  });
  const released = new Counter({ name: 'postline_scheduled_released_total', help: 'Scheduled requests released to their request lane', registers });
  const cancelled = new Counter({ name: 'postline_scheduled_cancelled_total', help: 'Scheduled messages and retries dropped as cancelled', registers });
  lane.on('size', (n: number) => {
    size.set(n);
    bodies.set((lane as unknown as { book: { bodyBytes: number } }).book.bodyBytes);
  });
  lane.on('released', (late: number[]) => {
    released.inc(late.length);
    for (const ms of late) lateness.observe(Math.max(0, ms) / 1000);
  });
  lane.on('cancelled', (n: number) => cancelled.inc(n));
}
