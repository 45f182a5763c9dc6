/**
 * Between the tracker's responses and Kafka: a bounded in-memory queue. `push` never waits (a
 * redirect answers in microseconds whatever the broker does) and does none of the producer's
 * work: the events pushed while the event loop handles this turn's requests are handed on
 * together once those callbacks are over (setImmediate), so building, encoding and batching an
 * event never runs between a request and its response. Up to `concurrency` events are handed
 * to the producer at once, which batches them (BatchingProducer's linger). When the
 * producer fails (the broker is down) the event goes back to the head of the queue and sending
 * pauses for `retryDelayMs`; when the queue is full a new event is dropped and counted — the
 * redirect still answers. Events are at-least-once while they fit, best effort beyond that: a
 * replica that dies loses what it held (at most `maxQueued`).
 *
 * Emits 'dropped' (reason: 'full'), 'published' and 'failed' (err) for metrics.
 */
import { EventEmitter } from 'node:events';
import type { EventInput } from '../../shared/events.js';

export interface EventBufferOptions {
  publish: (event: EventInput) => Promise<unknown>;
  /** Events held (queued + being sent) at most. */
  maxQueued: number;
  /** Events handed to `publish` at once. */
  concurrency: number;
  /** Pause after a failed publish before sending again (default 1000 ms). */
  retryDelayMs?: number;
}

export class EventBuffer extends EventEmitter {
  private readonly queue: EventInput[] = [];
  private head = 0;
  private inFlight = 0;
  private pausedUntil = 0;
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private closed = false;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly opts: EventBufferOptions) {
    super();
  }

  /** Events held: waiting or being sent. */
  get size(): number {
    return this.queue.length - this.head + this.inFlight;
  }

  /** Queues an event; false when it was dropped (the queue is full). Never waits. */
  push(event: EventInput): boolean {
    if (this.size >= this.opts.maxQueued) {
      this.emit('dropped', 'full');
      return false;
    }
    this.queue.push(event);
    // Handed on after this turn's I/O callbacks (the responses), all of them at once.
    this.immediate ??= setImmediate(() => {
      this.immediate = undefined;
      this.pump();
    });
    return true;
  }

  /** Resolves once nothing is held, or after `timeoutMs`; true when empty. Shutdown calls it. */
  async drain(timeoutMs: number): Promise<boolean> {
    if (this.size === 0) return true;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.idleWaiters = this.idleWaiters.filter((w) => w !== done);
        resolve(false);
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.idleWaiters.push(done);
    });
  }

  /** Stops sending (what is left stays unsent); safe to call twice. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
  }

  private pump(): void {
    if (this.closed || this.timer) return;
    const wait = this.pausedUntil - Date.now();
    if (wait > 0) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.pump();
      }, wait);
      return;
    }
    while (this.inFlight < this.opts.concurrency && this.head < this.queue.length) {
      const event = this.queue[this.head++];
      this.inFlight++;
      this.opts.publish(event).then(
        () => this.settled(undefined),
        (err: unknown) => this.settled(err, event),
      );
    }
    // Compact now and then instead of shifting one by one.
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
  }

  private settled(err: unknown, event?: EventInput): void {
    this.inFlight--;
    if (event) {
      this.emit('failed', err);
      // Back to the front: it was there first. Room is certain: it was counted while in flight.
      if (this.head > 0) this.queue[--this.head] = event;
      else this.queue.unshift(event);
      this.pausedUntil = Date.now() + (this.opts.retryDelayMs ?? 1000);
    } else this.emit('published');
    if (this.size === 0) for (const w of this.idleWaiters.splice(0)) w();
    this.pump();
  }
}
