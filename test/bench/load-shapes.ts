/**
 * The two ways a benchmark drives a system, independent of what is being driven:
 * a closed loop (N lanes, each starting its next operation when the last one finished: measures
 * throughput) and an open loop (operations start on a fixed schedule whatever the replies do:
 * measures latency at a given rate without coordinated omission).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Deadline } from './bench-timing.js';

export interface ClosedLoopResult {
  /** Operations that completed. */
  done: number;
  seconds: number;
  /** Stopped at the deadline before `total` operations. */
  truncated: boolean;
}

/** Runs `op` `total` times with at most `lanes` in flight, stopping early at `deadline`. */
export async function closedLoop(lanes: number, total: number, deadline: Deadline, op: () => Promise<void>): Promise<ClosedLoopResult> {
  let started = 0;
  let done = 0;
  const t0 = performance.now();
  const lane = async (): Promise<void> => {
    while (started < total && !deadline.passed) {
      started++;
      await op();
      done++;
    }
  };
  await Promise.all(Array.from({ length: lanes }, lane));
  return { done, seconds: (performance.now() - t0) / 1000, truncated: done < total };
}

/**
 * An open loop gives up once this many seconds' worth of operations are unanswered: the
 * system has fallen that far behind and is not sustaining the rate (the run is flagged).
 */
export const BACKLOG_SECONDS = 1;

export interface OpenLoopOptions {
  /** Operations per second. */
  rate: number;
  durationMs: number;
  /** Stop adding load once this many operations are unanswered (the system fell behind). */
  maxOutstanding: number;
  signal: AbortSignal;
}

export interface OpenLoopResult {
  /** Milliseconds from each operation's scheduled start to its completion, for those that completed. */
  latenciesMs: Float64Array;
  /** Operations started per second over the sending period. */
  achievedRate: number;
  errors: number;
  firstError?: string;
  /** Stopped early (deadline, backlog) or some operations never completed. */
  truncated: boolean;
}

/**
 * Starts `op` on a fixed schedule, checked every millisecond; when a timer fires late, the
 * operations that fell due meanwhile all start at once and their latency counts from when they
 * should have started, so a stall in the system under test cannot hide itself.
 */
export async function openLoop(o: OpenLoopOptions, op: () => Promise<void>): Promise<OpenLoopResult> {
  const total = Math.floor((o.rate * o.durationMs) / 1000);
  const latencies = new Float64Array(total).fill(Number.NaN);
  const deadline = new Deadline(o.durationMs * 2 + 5_000, o.signal);
  let started = 0;
  let completed = 0;
  let errors = 0;
  let firstError: string | undefined;
  let stoppedEarly = false;
  const t0 = performance.now();
  while (started < total) {
    if (deadline.passed || started - completed - errors > o.maxOutstanding) {
      stoppedEarly = true;
      break;
    }
    const due = Math.min(total, Math.floor(((performance.now() - t0) * o.rate) / 1000) + 1);
    for (; started < due; started++) {
      const i = started;
      const scheduled = t0 + (i * 1000) / o.rate;
      op().then(
        () => {
          latencies[i] = performance.now() - scheduled;
          completed++;
        },
        (err: Error) => {
          errors++;
          firstError ??= err.message;
        },
      );
    }
    await sleep(1);
  }
  const sendingSeconds = (performance.now() - t0) / 1000;
  while (completed + errors < started && !deadline.passed) await sleep(5);
  return {
    latenciesMs: latencies.filter((v) => !Number.isNaN(v)),
    achievedRate: started / sendingSeconds,
    errors,
    firstError,
    truncated: stoppedEarly || completed + errors < started,
  };
}
