/**
 * A token bucket over several windows at once (per second, minute, hour): a message may go when
 * every window has a token. Each window's limit is paced evenly over the window (a token every
 * `window / limit`), and a bucket saves up at most `burstMs` worth of tokens (at least one), so a
 * rate holds over any few seconds, not just on average over the window. Pure: time is passed in.
 *
 * `factor` scales every window's rate (adaptive back-off lowers it after throttling replies).
 */
import type { RateWindow } from './shaping-rules.js';

interface WindowState {
  window: RateWindow;
  /** Tokens per millisecond at the current factor. */
  rate: number;
  capacity: number;
  tokens: number;
}

export class TokenBucket {
  private windows: WindowState[];
  private at: number;
  private factorNow = 1;

  constructor(
    windows: RateWindow[],
    private readonly burstMs: number,
    now: number,
  ) {
    this.at = now;
    this.windows = windows.map((w) => {
      const s: WindowState = { window: w, rate: 0, capacity: 0, tokens: 0 };
      this.size(s);
      s.tokens = s.capacity;
      return s;
    });
  }

  /** No window limits anything. */
  get unlimited(): boolean {
    return this.windows.length === 0;
  }

  get factor(): number {
    return this.factorNow;
  }

  /** Messages per second allowed now by the tightest window (Infinity when unlimited). */
  perSecond(): number {
    return this.windows.reduce((min, w) => Math.min(min, w.rate * 1000), Infinity);
  }

  /** Scales every window's rate to `factor` × its limit (from `now` on). */
  setFactor(factor: number, now: number): void {
    this.refill(now);
    this.factorNow = factor;
    for (const s of this.windows) {
      this.size(s);
      s.tokens = Math.min(s.tokens, s.capacity);
    }
  }

  /** Milliseconds until the `n`-th next message may go (0: now), assuming nothing else takes tokens. */
  waitMs(now: number, n = 1): number {
    this.refill(now);
    let wait = 0;
    // A hair below a whole token is float rounding, not a reason to wait another timer tick.
    for (const s of this.windows) if (s.tokens < n - 1e-9) wait = Math.max(wait, (n - s.tokens) / s.rate);
    return wait;
  }

  /** Takes one token from every window; call only when `waitMs(now)` is 0. */
  take(now: number): void {
    this.refill(now);
    for (const s of this.windows) s.tokens -= 1;
  }

  private size(s: WindowState): void {
    s.rate = (s.window.limit * this.factorNow) / s.window.ms;
    s.capacity = Math.max(1, s.rate * this.burstMs);
  }

  private refill(now: number): void {
    const dt = Math.max(0, now - this.at);
    this.at = Math.max(this.at, now);
    if (dt === 0) return;
    for (const s of this.windows) s.tokens = Math.min(s.capacity, s.tokens + dt * s.rate);
  }
}
