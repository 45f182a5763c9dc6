/**
 * Liveness of a stage's consumer: is it really consuming? kafkajs reports a consumer that
 * crashed on a non-retriable error (and will not restart) or left its group only as events;
 * the process stays up and `/healthz` would say 200 while nothing moves. A `ConsumerLiveness`
 * follows those events, and `livenessProblem` (pure) decides: a consumer that crashed without
 * restarting is dead at once; one out of its group (rebalancing, restarting, never joined) is
 * dead once that has lasted longer than a rebalance may (`graceMs`).
 */
import type { Consumer } from 'kafkajs';

export interface MembershipState {
  /** A member of its group now. */
  member: boolean;
  /** When `member` last changed (ms). */
  since: number;
  /** Why the consumer crashed for good (kafkajs will not restart it). */
  crashed?: string;
}

/** Null while the consumer is alive, else why it is not. */
export function livenessProblem(state: MembershipState, now: number, graceMs: number): string | null {
  if (state.crashed !== undefined) return `consumer crashed and will not restart: ${state.crashed}`;
  if (state.member) return null;
  const out = now - state.since;
  return out > graceMs ? `not a member of its consumer group for ${Math.round(out / 1000)} s (grace ${Math.round(graceMs / 1000)} s)` : null;
}

/** Follows one consumer's group membership from its events (attach before `connect`/`run`). */
export class ConsumerLiveness {
  private state: MembershipState;

  constructor(consumer: Consumer, private readonly now: () => number = Date.now) {
    this.state = { member: false, since: now() };
    const set = (member: boolean): void => {
      if (member !== this.state.member) this.state = { ...this.state, member, since: this.now() };
    };
    consumer.on(consumer.events.GROUP_JOIN, () => {
      set(true);
      delete this.state.crashed;
    });
    consumer.on(consumer.events.REBALANCING, () => set(false));
    consumer.on(consumer.events.STOP, () => set(false));
    consumer.on(consumer.events.DISCONNECT, () => set(false));
    consumer.on(consumer.events.CRASH, (e) => {
      set(false);
      if (!e.payload.restart) this.state.crashed = `${e.payload.error.name}: ${e.payload.error.message}`;
    });
  }

  problem(graceMs: number): string | null {
    return livenessProblem(this.state, this.now(), graceMs);
  }
}

export interface LivenessWatch {
  /** Checks by name: null when alive, else why not. */
  checks: Record<string, () => string | null>;
  /** How often to look (default 1 s). */
  intervalMs?: number;
  /** Called once, with every failing check, the first time any fails. */
  onDead(problems: Record<string, string>): void;
}

/** Runs `onDead` the first time a check fails (e.g. to exit so a supervisor restarts the stage). Returns a stop function. */
export function watchLiveness(w: LivenessWatch): () => void {
  const timer = setInterval(() => {
    const problems: Record<string, string> = {};
    for (const [name, check] of Object.entries(w.checks)) {
      const p = check();
      if (p) problems[name] = p;
    }
    if (Object.keys(problems).length === 0) return;
    clearInterval(timer);
    w.onDead(problems);
  }, w.intervalMs ?? 1000);
  timer.unref();
  return () => clearInterval(timer);
}
