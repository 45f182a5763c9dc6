/**
 * One circuit breaker per destination host, on opossum. opossum keeps the state machine —
 * closed → open → (after `halfOpenAfterMs`) half-open with exactly one trial call → closed on
 * success, open again on failure — and rejects calls while open. What opens it is ours: opossum
 * trips on an error *percentage*, but a host that refuses five connections in ten seconds is
 * down whatever share of earlier connections worked, so failures are counted here, in a sliding
 * window that restarts when the breaker closes.
 *
 * Only connection attempts go through a breaker (TCP, greeting, EHLO, AUTH): a 5xx to a
 * recipient says nothing about the host's health.
 *
 * Emits 'transition' (from: BreakerState, to: BreakerState, failures: number).
 */
import { EventEmitter } from 'node:events';
import CircuitBreaker from 'opossum';
import { TransientError } from '../../shared/errors.js';

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerSettings {
  /** Connection failures within `windowMs` that open the breaker. */
  failureThreshold: number;
  windowMs: number;
  /** Time open before one probe is let through. */
  halfOpenAfterMs: number;
}

/** A connection was not attempted because the host's breaker is open (or its probe is under way). */
export class BreakerOpenError extends TransientError {
  constructor(readonly host: string) {
    super('BREAKER_OPEN', `circuit breaker for ${host} is open: no new connections until a probe succeeds`);
  }
}

type Action = (open: () => Promise<void>) => Promise<void>;

export class HostBreaker extends EventEmitter {
  private readonly breaker: CircuitBreaker<[() => Promise<void>], void>;
  private failures: number[] = [];
  private current: BreakerState = 'closed';

  constructor(
    readonly host: string,
    private readonly settings: BreakerSettings,
    private readonly now: () => number = Date.now,
  ) {
    super();
    const action: Action = (open) => open();
    this.breaker = new CircuitBreaker(action, {
      name: host,
      // The connection has its own timeouts (connect, greeting); opossum must not add another.
      timeout: false,
      resetTimeout: settings.halfOpenAfterMs,
      // Never trip on opossum's percentage; `onFailure` decides (a half-open failure still reopens).
      errorThresholdPercentage: 100,
      rollingCountTimeout: settings.windowMs,
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
    });
    this.breaker.on('failure', () => this.onFailure());
    this.breaker.on('open', () => this.moveTo('open'));
    this.breaker.on('halfOpen', () => this.moveTo('half-open'));
    this.breaker.on('close', () => {
      this.failures = [];
      this.moveTo('closed');
    });
  }

  get state(): BreakerState {
    return this.current;
  }

  /** A new connection may be attempted now: closed, or half-open with its probe not yet taken. */
  get allowsConnect(): boolean {
    return this.breaker.closed || (this.breaker.halfOpen && this.breaker.pendingClose);
  }

  /** Failures counted in the current window (closed state). */
  get recentFailures(): number {
    this.prune();
    return this.failures.length;
  }

  /** Runs a connection attempt through the breaker; rejects with BreakerOpenError without calling it when open. */
  async run(open: () => Promise<void>): Promise<void> {
    try {
      await this.breaker.fire(open);
    } catch (err) {
      if ((err as { code?: string }).code === 'EOPENBREAKER') throw new BreakerOpenError(this.host);
      throw err;
    }
  }

  /** Stops the breaker's timers. */
  shutdown(): void {
    this.breaker.shutdown();
  }

  private onFailure(): void {
    if (!this.breaker.closed) return; // a failed probe: opossum reopens by itself
    this.failures.push(this.now());
    this.prune();
    if (this.failures.length >= this.settings.failureThreshold) this.breaker.open();
  }

  private prune(): void {
    const since = this.now() - this.settings.windowMs;
    while (this.failures.length > 0 && this.failures[0] < since) this.failures.shift();
  }

  private moveTo(to: BreakerState): void {
    const from = this.current;
    if (from === to) return;
    this.current = to;
    this.emit('transition', from, to, this.failures.length);
  }
}

/**
 * The breakers of a dispatcher, one per host key (`host:port`), created on first use.
 * Emits 'transition' (host, from, to, failures) for every breaker.
 */
export class BreakerRegistry extends EventEmitter {
  private readonly breakers = new Map<string, HostBreaker>();

  constructor(private readonly settings: BreakerSettings) {
    super();
  }

  get(host: string): HostBreaker {
    let b = this.breakers.get(host);
    if (!b) {
      b = new HostBreaker(host, this.settings);
      b.on('transition', (from: BreakerState, to: BreakerState, failures: number) => this.emit('transition', host, from, to, failures));
      this.breakers.set(host, b);
    }
    return b;
  }

  states(): Array<{ host: string; state: BreakerState }> {
    return [...this.breakers.values()].map((b) => ({ host: b.host, state: b.state }));
  }

  shutdown(): void {
    for (const b of this.breakers.values()) b.shutdown();
  }
}
