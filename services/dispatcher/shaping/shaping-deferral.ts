/** A message that could not get a send token in time: deferred to the shortest retry tier. */
import { TransientError } from '../../../shared/errors.js';

/** The code of a shaper's deferral (its outcome's reason code). */
export const SHAPING_DEFERRED = 'SHAPING_DEFERRED';

export type DeferralReason = 'queue-full' | 'wait-too-long';

export class ShapingDeferral extends TransientError {
  constructor(
    readonly key: string,
    readonly reason: DeferralReason,
    readonly waitMs: number,
  ) {
    super(SHAPING_DEFERRED, reason === 'queue-full' ? `too many messages waiting for send tokens of ${key}` : `send token of ${key} not available within ${Math.round(waitMs)} ms`);
  }
}
