/**
 * The time source of the shaping modules: the wall clock in production, a clock a test moves by
 * hand (`ManualClock`) in unit tests, so no test sleeps.
 */
export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  now(): number;
  /**
   * Calls `fn` once after `ms`. A `background` timer (a recovery step, a cool-down) does not
   * hold the process open; one a waiting message depends on does.
   */
  schedule(ms: number, fn: () => void, opts?: { background?: boolean }): TimerHandle;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  schedule(ms, fn, opts) {
    const t = setTimeout(fn, Math.max(0, ms));
    if (opts?.background) t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};

/** A clock that only moves when told; `advance` runs the timers that come due, in order. */
export class ManualClock implements Clock {
  private timers: Array<{ at: number; seq: number; fn: () => void; live: boolean }> = [];
  private seq = 0;

  constructor(private t = 0) {}

  now(): number {
    return this.t;
  }

  schedule(ms: number, fn: () => void): TimerHandle {
    const timer = { at: this.t + Math.max(0, ms), seq: this.seq++, fn, live: true };
    this.timers.push(timer);
    return { cancel: () => void (timer.live = false) };
  }

  /** Moves time forward by `ms`, firing due timers (and timers they schedule) on the way. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      this.timers = this.timers.filter((x) => x.live);
      const next = this.timers.filter((x) => x.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!next) break;
      this.t = Math.max(this.t, next.at);
      next.live = false;
      next.fn();
    }
    this.t = end;
  }

  /** Timers still waiting to fire. */
  pending(): number {
    return this.timers.filter((x) => x.live).length;
  }
}
