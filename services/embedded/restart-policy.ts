/**
 * When a supervised process exits without being asked to: restart it after a backoff, or give
 * up. A pure decision, so the supervisor's process handling stays thin and every case has a
 * table-driven test.
 */

export interface RestartPolicy {
  /** Delay before the first restart after a stable run (doubles with each rapid failure). */
  initialDelayMs: number;
  /** The backoff never exceeds this. */
  maxDelayMs: number;
  /** A process that stays ready this long is stable: its next failure starts the backoff over. */
  stableAfterMs: number;
  /** Give up after this many failures in a row without a stable run in between. */
  maxRapidFailures: number;
  /** How long a (re)started process may take to say it is ready before it counts as failed. */
  readyTimeoutMs: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicy = {
  initialDelayMs: 500,
  maxDelayMs: 15_000,
  stableAfterMs: 30_000,
  maxRapidFailures: 6,
  readyTimeoutMs: 120_000,
};

/**
 * Exit code of a stage (and of `postline broker`) whose configuration or arguments are wrong
 * (`serviceMain`): restarting cannot help, so the supervisor gives up at once.
 */
export const CONFIG_ERROR_EXIT_CODE = 2;

export interface Failure {
  /** How the process ended. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** How long it had been ready when it exited; undefined if it never became ready. */
  readyForMs?: number;
  /** Rapid failures in a row before this one. */
  previousFailures: number;
}

export type RestartDecision =
  | { action: 'restart'; delayMs: number; failures: number }
  | { action: 'give-up'; failures: number; reason: string };

/** What to do after an unrequested exit. */
export function decideRestart(f: Failure, p: RestartPolicy = DEFAULT_RESTART_POLICY): RestartDecision {
  const stable = f.readyForMs !== undefined && f.readyForMs >= p.stableAfterMs;
  const failures = (stable ? 0 : f.previousFailures) + 1;
  if (f.code === CONFIG_ERROR_EXIT_CODE && f.readyForMs === undefined) {
    return { action: 'give-up', failures, reason: 'its configuration is invalid (exit code 2): restarting cannot help' };
  }
  if (failures >= p.maxRapidFailures) {
    return { action: 'give-up', failures, reason: `it failed ${failures} times in a row, none of them staying up for ${p.stableAfterMs / 1000} s` };
  }
  return { action: 'restart', delayMs: Math.min(p.maxDelayMs, p.initialDelayMs * 2 ** (failures - 1)), failures };
}

/** How an exit reads in a log line: "code 1", "signal SIGKILL". */
export function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `signal ${signal}` : `code ${code}`;
}
