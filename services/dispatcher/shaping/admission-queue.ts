/**
 * The messages waiting for send tokens of one shaping key, served critical first and in arrival
 * order within a priority. Only the head waits on a timer; a waiter of this key never holds up
 * another key's messages. Bounded: at most `maxWaiting` wait, and none longer than `maxWaitMs`
 * — a message that would is rejected at once (or when its deadline passes, should higher
 * priorities have overtaken it) with ShapingDeferral, so it goes to a retry tier instead of
 * holding memory.
 */
import type { Priority } from '../../../shared/config.js';
import type { Clock, TimerHandle } from './clock.js';
import { ShapingDeferral } from './shaping-deferral.js';
import type { TokenBucket } from './token-bucket.js';

const ORDER: Priority[] = ['critical', 'transactional', 'bulk'];

interface Waiter {
  priority: Priority;
  since: number;
  resolve: () => void;
  reject: (err: Error) => void;
  deadline: TimerHandle;
}

export interface QueueOptions {
  maxWaiting: number;
  maxWaitMs: number;
}

export interface QueueEvents {
  /** A message got its token after waiting `ms` (0: at once). */
  admitted(ms: number, priority: Priority): void;
  deferred(err: ShapingDeferral, priority: Priority): void;
}

export class AdmissionQueue {
  private readonly waiting: Record<Priority, Waiter[]> = { critical: [], transactional: [], bulk: [] };
  private timer?: TimerHandle;

  constructor(
    readonly key: string,
    /** Every bucket a message of this key takes a token from (site, and the domain's own). */
    private readonly buckets: TokenBucket[],
    private readonly clock: Clock,
    private readonly opts: QueueOptions,
    private readonly events: QueueEvents,
  ) {}

  get size(): number {
    return ORDER.reduce((n, p) => n + this.waiting[p].length, 0);
  }

  admit(priority: Priority): Promise<void> {
    const now = this.clock.now();
    if (this.size === 0 && this.ready(now) === 0) {
      this.take(now);
      this.events.admitted(0, priority);
      return Promise.resolve();
    }
    if (this.size >= this.opts.maxWaiting) return this.defer(new ShapingDeferral(this.key, 'queue-full', 0), priority);
    // Waiters that go before this one: those of its priority and higher.
    const ahead = ORDER.slice(0, ORDER.indexOf(priority) + 1).reduce((n, p) => n + this.waiting[p].length, 0);
    const estimate = Math.max(...this.buckets.map((b) => b.waitMs(now, ahead + 1)), 0);
    if (estimate > this.opts.maxWaitMs) return this.defer(new ShapingDeferral(this.key, 'wait-too-long', estimate), priority);
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        priority,
        since: now,
        resolve,
        reject,
        deadline: this.clock.schedule(this.opts.maxWaitMs, () => {
          this.remove(waiter);
          const err = new ShapingDeferral(this.key, 'wait-too-long', this.clock.now() - waiter.since);
          this.events.deferred(err, priority);
          reject(err);
          this.pump();
        }),
      };
      this.waiting[priority].push(waiter);
      this.pump();
    });
  }

  /** Serves the head while tokens are there, then waits for the next token (rates may have changed). */
  pump(): void {
    this.timer?.cancel();
    this.timer = undefined;
    for (;;) {
      const head = ORDER.map((p) => this.waiting[p][0]).find((w) => w !== undefined);
      if (!head) return;
      const now = this.clock.now();
      const wait = this.ready(now);
      if (wait > 0) {
        // A timer may fire a hair early; never spin on a sub-millisecond wait.
        this.timer = this.clock.schedule(Math.max(1, Math.ceil(wait)), () => this.pump());
        return;
      }
      this.take(now);
      this.waiting[head.priority].shift();
      head.deadline.cancel();
      this.events.admitted(now - head.since, head.priority);
      head.resolve();
    }
  }

  /** Rejects every waiter (shutdown). */
  close(err: Error): void {
    this.timer?.cancel();
    for (const p of ORDER) {
      for (const w of this.waiting[p].splice(0)) {
        w.deadline.cancel();
        w.reject(err);
      }
    }
  }

  private ready(now: number): number {
    return Math.max(0, ...this.buckets.map((b) => b.waitMs(now)));
  }

  private take(now: number): void {
    for (const b of this.buckets) b.take(now);
  }

  private remove(w: Waiter): void {
    const list = this.waiting[w.priority];
    const i = list.indexOf(w);
    if (i >= 0) list.splice(i, 1);
  }

  private defer(err: ShapingDeferral, priority: Priority): Promise<void> {
    this.events.deferred(err, priority);
    return Promise.reject(err);
  }
}
