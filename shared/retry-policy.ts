/**
 * Pure retry decisions: after a transient failure, which tier a message waits in and until
 * when, or whether it has run out of time. Tiers are fixed topics (1m, 5m, 15m, 1h) whose
 * durations come from configuration, so tests shorten them without special-cased code.
 * Every record entering a tier waits exactly that tier's delay, which keeps each tier's
 * records due in log order — what lets the scheduler hold a partition by its head record.
 */
import type { Priority } from './config/priority.js';
import { RETRY_TIERS, type RetryTier } from './topics.js';

export interface RetryPolicy {
  delays: Record<RetryTier, number>;
  maxAge: Record<Priority, number>;
  maxGreylistWaitMs: number;
}

export interface RetrySettings {
  delay1mMs: number;
  delay5mMs: number;
  delay15mMs: number;
  delay1hMs: number;
  maxAgeCriticalMs: number;
  maxAgeTransactionalMs: number;
  maxAgeBulkMs: number;
  maxGreylistWaitMs: number;
}

export function retryPolicy(s: RetrySettings): RetryPolicy {
  return {
    delays: { '1m': s.delay1mMs, '5m': s.delay5mMs, '15m': s.delay15mMs, '1h': s.delay1hMs },
    maxAge: { critical: s.maxAgeCriticalMs, transactional: s.maxAgeTransactionalMs, bulk: s.maxAgeBulkMs },
    maxGreylistWaitMs: s.maxGreylistWaitMs,
  };
}

export type RetryPlan = { action: 'retry'; tier: RetryTier; notBefore: number } | { action: 'expire'; reason: string };

export interface FailedAttempt {
  /** The attempt that just failed (1 = first). */
  attempt: number;
  priority: Priority;
  /** When the message was accepted (ms); max age counts from here. */
  acceptedAt: number;
  now: number;
  /** A server's "try again in N ms" (greylisting), if it gave one. */
  retryAfterMs?: number;
}

/** The tier for the attempt after `attempt`: 1m, 5m, 15m, then 1h for every later one. */
export function scheduledTier(attempt: number): RetryTier {
  return RETRY_TIERS[Math.min(Math.max(attempt, 1), RETRY_TIERS.length) - 1];
}

export function planRetry(policy: RetryPolicy, f: FailedAttempt): RetryPlan {
  let index = RETRY_TIERS.indexOf(scheduledTier(f.attempt));
  const hint = f.retryAfterMs === undefined ? 0 : Math.min(f.retryAfterMs, policy.maxGreylistWaitMs);
  // A greylisting hint moves the message to the first tier that waits at least that long.
  while (index < RETRY_TIERS.length - 1 && policy.delays[RETRY_TIERS[index]] < hint) index++;
  const tier = RETRY_TIERS[index];
  const notBefore = f.now + policy.delays[tier];
  const deadline = f.acceptedAt + policy.maxAge[f.priority];
  if (f.now >= deadline || notBefore > deadline) {
    const ageMin = Math.round((f.now - f.acceptedAt) / 60_000);
    return { action: 'expire', reason: `undelivered after ${f.attempt} attempt(s) and ${ageMin} min; max age for ${f.priority} is ${Math.round(policy.maxAge[f.priority] / 60_000)} min` };
  }
  return { action: 'retry', tier, notBefore };
}

/** Parses greylisting hints like "try again in 300 seconds" / "retry after 5 minutes" from a reply. */
export function retryAfterHint(reply: string): number | undefined {
  const m = /(?:try again|retry|wait)\D{0,20}?(\d{1,6})\s*(s|sec|secs|seconds?|m|min|mins|minutes?)\b/i.exec(reply);
  if (!m) return undefined;
  const n = Number(m[1]);
  return /^m/i.test(m[2]) ? n * 60_000 : n * 1000;
}
