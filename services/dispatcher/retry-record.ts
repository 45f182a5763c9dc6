/**
 * The record a transiently failed delivery leaves on `email.retry.<priority>.<tier>`: the same message for
 * the recipients still pending, with the attempt bookkeeping the scheduler and the next attempt
 * need. Which tier, and whether the message has run out of time, is `planRetry` in
 * shared/retry-policy.ts. Pure.
 */
import type { EmailReadyForDispatch } from '../../shared/contracts/email-ready-for-dispatch.js';

const MAX_REASON = 1000;

/**
 * The retry record after attempt `record.attempt` failed for `recipients`: attempt + 1, the
 * time of the first attempt kept (or set to this attempt's start), the last reason and the
 * time before which it must not be sent again.
 */
export function retryRecord(
  record: EmailReadyForDispatch,
  input: { recipients: string[]; reason: string; attemptStartedAt: Date; notBefore: Date },
): EmailReadyForDispatch {
  return {
    ...record,
    envelope: { from: record.envelope.from, to: input.recipients },
    attempt: record.attempt + 1,
    firstAttemptAt: record.firstAttemptAt ?? input.attemptStartedAt.toISOString(),
    lastReason: input.reason.slice(0, MAX_REASON),
    notBefore: input.notBefore.toISOString(),
  };
}
