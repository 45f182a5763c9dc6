/**
 * Timing primitives shared by suites: interleaved repetition of a measurement and its
 * baseline, time limits that stop a workload early instead of hanging the run, and CPU time.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { cpuSnapshot, foreignCores } from './machine-load.js';

export interface Interleaved<B, M> {
  baseline: B[];
  measured: M[];
  /** Per run (baseline + measurement): average cores other processes used meanwhile. */
  foreignCores: Array<number | null>;
}

/**
 * Runs `measure` and `baseline` alternately `runs` times (baseline first), so drift in the
 * machine (page cache, CPU frequency, a noisy neighbour) lands on both sides of the ratio, and
 * notes how busy the rest of the machine was during each run. `ownCpuSeconds` reports CPU of
 * the bench's own child processes (a broker), which is not interference.
 */
export async function interleave<B, M>(
  runs: number,
  baseline: (run: number) => Promise<B>,
  measure: (run: number) => Promise<M>,
  ownCpuSeconds: () => number | null = () => 0,
): Promise<Interleaved<B, M>> {
  const out: Interleaved<B, M> = { baseline: [], measured: [], foreignCores: [] };
  for (let i = 0; i < runs; i++) {
    const before = cpuSnapshot(ownCpuSeconds() ?? 0);
    out.baseline.push(await baseline(i));
    out.measured.push(await measure(i));
    out.foreignCores.push(foreignCores(before, cpuSnapshot(ownCpuSeconds() ?? 0)));
  }
  return out;
}

/** A point in time after which a workload stops, from its own limit and the suite's signal. */
export class Deadline {
  readonly at: number;
  constructor(
    limitMs: number,
    private readonly signal?: AbortSignal,
  ) {
    this.at = performance.now() + limitMs;
  }

  get passed(): boolean {
    return performance.now() >= this.at || this.signal?.aborted === true;
  }

  get remainingMs(): number {
    return this.signal?.aborted ? 0 : Math.max(0, this.at - performance.now());
  }
}

/** Rejects with a clear message if `promise` has not settled within `ms`. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `check` every `everyMs` until it is true or `deadline` passes; returns the last result. */
export async function pollUntil(check: () => boolean, deadline: Deadline, everyMs = 5): Promise<boolean> {
  while (!check()) {
    if (deadline.passed) return false;
    await sleep(everyMs);
  }
  return true;
}

/** CPU seconds (user + system) this process has used so far. */
export function ownCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}
