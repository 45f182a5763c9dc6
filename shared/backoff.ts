/**
 * Exponential backoff for retrying in place (a ClickHouse insert, a start-up step, restarting
 * a stage): `initialMs` before the second try, doubling each time, never more than `maxMs`.
 * Pure, so callers own their sleeping and aborting. Delivery retries are not this: they wait
 * in fixed tiers (`retry-policy.ts`).
 */
export interface Backoff {
  /** Delay after the first failure. */
  initialMs: number;
  /** Longest delay. */
  maxMs: number;
}

/** The delay after failed attempt number `attempt` (1 = the first). */
export function backoffDelayMs(attempt: number, b: Backoff): number {
  // The exponent is capped so a long outage cannot overflow to Infinity.
  const exponent = Math.min(Math.max(attempt, 1) - 1, 30);
  return Math.min(b.maxMs, b.initialMs * 2 ** exponent);
}
