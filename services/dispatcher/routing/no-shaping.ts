/**
 * The shaper interface the dispatcher calls for mx routes (the same names and shapes as
 * `services/dispatcher/shaping/shaper.ts`, which the shaping module implements), and a no-op
 * implementation — no rate limits, no warm-up caps — used when no shaper is given.
 */
import type { Priority } from '../../../shared/config.js';
import { TransientError } from '../../../shared/errors.js';

export interface ShapingKey {
  source: string;
  site: string;
  domain: string;
}

export interface Shaper {
  /** Waits for a send token of (source, site); rejects with a ShapingDeferral (code SHAPING_DEFERRED, retriable). */
  admit(key: ShapingKey, priority: Priority): Promise<void>;
  /** Connection limits for the fleet of (source, site). */
  limits(key: ShapingKey): { maxConnections: number; maxMessagesPerConnection: number };
  /** Every SMTP reply (or connection error) seen for (source, site). */
  observe(key: ShapingKey, reply: { code?: number; enhanced?: string; text?: string }): void;
  /** Whether a source address may take one more message today and is not paused (nor its pool). */
  sourceAvailable(source: string, pool?: string): boolean;
  /** Counts a message that left through `source` (warm-up day counter, auto-pause window). */
  recordSent(source: string, pool?: string): void;
  /** Counts a bounce through `source`; only recipient-class bounces can pause it. */
  recordBounce(source: string, recipientClass: boolean, pool?: string): void;
}

/** The code a shaper's deferral carries (its class lives with the shaper). */
export const SHAPING_DEFERRED = 'SHAPING_DEFERRED';

/** True for a shaper's "cannot send now" (checked by code and retriable, not by class or text). */
export function isShapingDeferral(err: unknown): err is TransientError {
  return err instanceof Error && (err as TransientError).code === SHAPING_DEFERRED && (err as TransientError).retriable === true;
}

/** No shaping: admits at once, no limits beyond the fleet's own. */
export class NoShaping implements Shaper {
  constructor(private readonly maxConnections = Number.POSITIVE_INFINITY) {}
  admit(): Promise<void> {
    return Promise.resolve();
  }
  limits(): { maxConnections: number; maxMessagesPerConnection: number } {
    return { maxConnections: this.maxConnections, maxMessagesPerConnection: Number.POSITIVE_INFINITY };
  }
  observe(): void {}
  sourceAvailable(): boolean {
    return true;
  }
  recordSent(): void {}
  recordBounce(): void {}
}
