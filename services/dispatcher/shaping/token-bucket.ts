/**
 * The send limiter of one shaping key over several windows at once (per second, minute, hour):
 * a message may go when every window allows it.
 * - The shortest window is a token bucket paced evenly — a token every `window / limit` — that
 *   saves up at most `burstMs` worth of tokens (at least one), so its rate holds over any few
 *   seconds, not just on average.
 * - Each longer window is a sliding-window count (60 slots): at most `limit` messages in any
 *   `window` (to a slot's precision). It caps the total without pacing: with 20/s and 36000/h a
 *   key sends at 20/s until its hour is used up.
 * Pure: time is passed in. `factor` scales every window (adaptive back-off lowers it).
 */
import type { RateWindow } from './shaping-rules.js';

const SLOTS = 60;
/** A hair below a whole token is float rounding, not a reason to wait another timer tick. */
const EPSILON = 1e-9;

/** The paced window: a continuous token bucket. */
class Paced {
  rate = 0;
  capacity = 0;
  tokens = 0;

  constructor(
    readonly window: RateWindow,
    private readonly burstMs: number,
    factor: number,
  ) {
    this.size(factor);
    this.tokens = this.capacity;
  }

  size(factor: number): void {
    this.rate = (this.window.limit * factor) / this.window.ms;
    this.capacity = Math.max(1, this.rate * this.burstMs);
    this.tokens = Math.min(this.tokens, this.capacity);
  }

  refill(dt: number): void {
    this.tokens = Math.min(this.capacity, this.tokens + dt * this.rate);
  }

  waitMs(n: number): number {
    return this.tokens >= n - EPSILON ? 0 : (n - this.tokens) / this.rate;
  }
}

/** A longer window: counts per slot over the last `window.ms`. */
class Sliding {
  private slots: Array<{ start: number; count: number }> = [];
  private readonly slotMs: number;
  limit = 0;

  constructor(
    readonly window: RateWindow,
    factor: number,
  ) {
    this.slotMs = window.ms / SLOTS;
    this.size(factor);
  }

  size(factor: number): void {
    this.limit = this.window.limit * factor;
  }

  take(now: number): void {
    this.expire(now);
    const start = Math.floor(now / this.slotMs) * this.slotMs;
    const last = this.slots[this.slots.length - 1];
    if (last && last.start === start) last.count++;
    else this.slots.push({ start, count: 1 });
  }

  waitMs(now: number, n: number): number {
    this.expire(now);
    let excess = this.slots.reduce((sum, s) => sum + s.count, 0) + n - this.limit;
    if (excess <= EPSILON) return 0;
    for (const s of this.slots) {
      excess -= s.count;
      if (excess <= EPSILON) return s.start + this.window.ms - now;
    }
    // More than the whole window allows: at least a full window away.
    return this.window.ms;
  }

  private expire(now: number): void {
    while (this.slots.length > 0 && this.slots[0].start + this.window.ms <= now) this.slots.shift();
  }
}

export class TokenBucket {
  private readonly paced?: Paced;
  private readonly sliding: Sliding[];
  private at: number;
  private factorNow = 1;

  constructor(windows: RateWindow[], burstMs: number, now: number) {
    this.at = now;
    const sorted = [...windows].sort((a, b) => a.ms - b.ms);
    if (sorted.length > 0) this.paced = new Paced(sorted[0], burstMs, 1);
    this.sliding = sorted.slice(1).map((w) => new Sliding(w, 1));
  }

  /** No window limits anything. */
  get unlimited(): boolean {
    return this.paced === undefined;
  }

  get factor(): number {
    return this.factorNow;
  }

  /** The paced rate now, in messages per second (Infinity when unlimited). */
  perSecond(): number {
    return this.paced ? this.paced.rate * 1000 : Infinity;
  }

  /** Scales every window's limit to `factor` × the rule (from `now` on). */
  setFactor(factor: number, now: number): void {
    this.refill(now);
    this.factorNow = factor;
    this.paced?.size(factor);
    for (const s of this.sliding) s.size(factor);
  }

  /** Milliseconds until the `n`-th next message may go (0: now), assuming nothing else takes tokens. */
  waitMs(now: number, n = 1): number {
    if (!this.paced) return 0;
    this.refill(now);
    return Math.max(this.paced.waitMs(n), ...this.sliding.map((s) => s.waitMs(now, n)));
  }

  /** Takes one message's share of every window; call only when `waitMs(now)` is 0. */
  take(now: number): void {
    if (!this.paced) return;
    this.refill(now);
    this.paced.tokens -= 1;
    for (const s of this.sliding) s.take(now);
  }

  private refill(now: number): void {
    const dt = Math.max(0, now - this.at);
    this.at = Math.max(this.at, now);
    if (dt > 0) this.paced?.refill(dt);
  }
}
