/**
 * A foreign producer's request with a future `sendAt` reaches the renderer straight from
 * `email.requested`: it is parked on `email.scheduled` (with a `scheduled` event) for the
 * scheduler to release when due, rather than rendered now. Pure decision; the renderer acts.
 */
import type { IHeaders } from 'kafkajs';
import type { EmailRequested } from '../../shared/contracts/email-requested.js';
import { PermanentError } from '../../shared/errors.js';

/** The scheduler's header on a released request (services/scheduler/scheduled-lane.ts): render it, whatever its sendAt. */
const RELEASED_HEADER = 'postline-released';

export interface ScheduleLimits {
  maxAheadMs: number;
  immediateWithinMs: number;
}

/** 'park' for a request to hold until its sendAt, 'render' otherwise; throws PermanentError past the limit. */
export function futureRequestDecision(req: EmailRequested, headers: IHeaders | undefined, now: number, limits: ScheduleLimits): 'park' | 'render' {
  if (!req.sendAt || headers?.[RELEASED_HEADER] !== undefined) return 'render';
  const at = Date.parse(req.sendAt);
  if (at - now <= limits.immediateWithinMs) return 'render';
  if (at - now > limits.maxAheadMs) throw new PermanentError('SEND_AT_TOO_FAR', `sendAt ${req.sendAt} is more than ${Math.floor(limits.maxAheadMs / 86_400_000)} days ahead`);
  return 'park';
}
