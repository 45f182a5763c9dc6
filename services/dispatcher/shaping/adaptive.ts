/**
 * Adaptive back-off of one (source address, site), as a pure state machine: a throttling reply
 * multiplies its limits by `throttleFactor` (never below `minFactor`); replies within `holdMs` of
 * the last lowering only extend the cool-down (one burst of 421s over several connections is one
 * signal, not five halvings). `cooldownMs` after the last throttling reply the limits start to
 * recover, one step (÷ throttleFactor) every `recoverStepMs`, back to the rule (factor 1).
 */
export interface AdaptiveOptions {
  throttleFactor: number;
  minFactor: number;
  holdMs: number;
  cooldownMs: number;
  recoverStepMs: number;
}

export interface AdaptiveState {
  /** Share of the rule's limits in force (1: the rule). */
  factor: number;
  lastLoweredAt?: number;
  /** Last throttling reply + cooldownMs, then each recovery step's time. */
  nextStepAt?: number;
}

export interface AdaptiveChange {
  from: number;
  to: number;
  reason: 'throttled' | 'recovered';
}

export const initialAdaptive = (): AdaptiveState => ({ factor: 1 });

const round = (f: number): number => Math.round(f * 1e6) / 1e6;

/** A throttling reply at `now`. */
export function onThrottle(s: AdaptiveState, now: number, o: AdaptiveOptions): { state: AdaptiveState; change?: AdaptiveChange } {
  const nextStepAt = now + o.cooldownMs;
  if (s.lastLoweredAt !== undefined && now - s.lastLoweredAt < o.holdMs) return { state: { ...s, nextStepAt } };
  const to = round(Math.max(o.minFactor, s.factor * o.throttleFactor));
  const state = { factor: to, lastLoweredAt: now, nextStepAt };
  return to === s.factor ? { state } : { state, change: { from: s.factor, to, reason: 'throttled' } };
}

/** Time passing: one recovery step when it is due. */
export function onTick(s: AdaptiveState, now: number, o: AdaptiveOptions): { state: AdaptiveState; change?: AdaptiveChange } {
  if (s.factor >= 1 || s.nextStepAt === undefined || now < s.nextStepAt) return { state: s };
  const to = round(Math.min(1, s.factor / o.throttleFactor));
  const state: AdaptiveState = to >= 1 ? { factor: 1 } : { factor: to, lastLoweredAt: s.lastLoweredAt, nextStepAt: now + o.recoverStepMs };
  return { state, change: { from: s.factor, to, reason: 'recovered' } };
}

/** When `onTick` next has something to do (undefined: at the rule, nothing to recover). */
export function nextTickAt(s: AdaptiveState): number | undefined {
  return s.factor < 1 ? s.nextStepAt : undefined;
}
