/**
 * Which assigned partitions the sink may fetch: none while ClickHouse is behind
 * (back-pressure), none once stopping, and not those waiting out a retry. Applied with
 * per-partition pause/resume only: in kafkajs a topic-wide pause and a partition pause
 * overwrite each other, so mixing them would silently resume a paused topic.
 */
import type { Consumer } from 'kafkajs';

export class ConsumptionGate {
  private assigned: number[] = [];
  private backpressured = false;
  private closed = false;
  private waiting = new Map<number, NodeJS.Timeout>();

  constructor(
    private readonly consumer: Pick<Consumer, 'pause' | 'resume'>,
    private readonly topic: string,
  ) {}

  /** A new assignment (after a rebalance); the desired state is applied to it. */
  assign(partitions: number[]): void {
    this.assigned = [...partitions];
    for (const [p, timer] of this.waiting) {
      if (partitions.includes(p)) continue;
      clearTimeout(timer);
      this.waiting.delete(p);
    }
    this.apply();
  }

  get isBackpressured(): boolean {
    return this.backpressured;
  }

  /** True while a partition waits out a retry. */
  isWaiting(partition: number): boolean {
    return this.waiting.has(partition);
  }

  /** Turns back-pressure on or off; returns whether that changed anything. */
  setBackpressure(on: boolean): boolean {
    if (on === this.backpressured) return false;
    this.backpressured = on;
    this.apply();
    return true;
  }

  /** Keeps one partition paused for `ms` (it is fetched again from its resolved offset after). */
  waitFor(partition: number, ms: number): void {
    clearTimeout(this.waiting.get(partition));
    this.waiting.set(
      partition,
      setTimeout(() => {
        this.waiting.delete(partition);
        this.apply();
      }, ms),
    );
    this.apply();
  }

  /** Pauses everything for good (shutdown). */
  close(): void {
    this.closed = true;
    for (const t of this.waiting.values()) clearTimeout(t);
    this.waiting.clear();
    this.apply();
  }

  private apply(): void {
    if (this.assigned.length === 0) return;
    const paused = this.closed || this.backpressured ? this.assigned : this.assigned.filter((p) => this.waiting.has(p));
    const active = this.assigned.filter((p) => !paused.includes(p));
    try {
      if (paused.length > 0) this.consumer.pause([{ topic: this.topic, partitions: paused }]);
      if (active.length > 0) this.consumer.resume([{ topic: this.topic, partitions: active }]);
    } catch {
      // The consumer is not running (stopped, or not yet started): nothing is fetched anyway.
    }
  }
}
