/**
 * Pure part of the scheduler: given the records at the head of a retry partition, which prefix
 * is due now, and how long to hold the partition for the first one that is not.
 */
import { EmailReadyForDispatchContract, type EmailReadyForDispatch } from '../../shared/contracts/email-ready-for-dispatch.js';
import { ValidationError } from '../../shared/errors.js';

export type HeadItem =
  | { kind: 'due'; offset: string; record: EmailReadyForDispatch }
  | { kind: 'invalid'; offset: string; error: ValidationError };

export interface HeadPlan {
  /** Records to move now, in log order (invalid ones go to email.dead). */
  ready: HeadItem[];
  /** Milliseconds until the first record that is not yet due, if any. */
  waitMs?: number;
}

export function planHead(messages: Array<{ offset: string; value: Buffer | null }>, now: number): HeadPlan {
  const ready: HeadItem[] = [];
  for (const m of messages) {
    let record: EmailReadyForDispatch;
    try {
      record = EmailReadyForDispatchContract.decode(m.value);
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      ready.push({ kind: 'invalid', offset: m.offset, error: err });
      continue;
    }
    const due = record.notBefore ? Date.parse(record.notBefore) : 0;
    if (due > now) return { ready, waitMs: due - now };
    ready.push({ kind: 'due', offset: m.offset, record });
  }
  return { ready };
}
