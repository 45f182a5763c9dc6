/**
 * What replaying a dead letter produces. Pure.
 *
 * - A delivery that ended on `email.dead` in the dispatcher (`expired`, or `failed` as
 *   unsendable) — its source is a dispatch topic and it decodes as a dispatch record — goes back
 *   to `email.dispatch.<priority>` for an immediate attempt: attempt number + 1 (the next attempt,
 *   never a repeat of a settled one, which the dispatcher's duplicate suppression would skip),
 *   `replayedAt` set so its maximum age counts from the replay (a fresh time budget), and no
 *   `notBefore`. Only the recipients of that dead letter are in it.
 * - Anything else (a request the renderer could not render, an invalid record) is produced again
 *   as it was — same value, key and headers — to the topic it came from, for the stage that
 *   refused it to try again (after the template was uploaded, the producer fixed, ...). Except a
 *   request refused for standing in the wrong priority lane (`PRIORITY_MISMATCH`): the same lane
 *   would refuse it again, so it goes to the shared lane, `email.requested`, which takes any
 *   priority.
 */
import type { IHeaders } from 'kafkajs';
import type { DeadLetter } from '../contracts/dead-letter.js';
import { EmailReadyForDispatchContract } from '../contracts/email-ready-for-dispatch.js';
import { Topics } from '../topics.js';

export interface ReplayRecord {
  topic: string;
  key: string | null;
  value: Buffer;
  headers: IHeaders;
  /** `dispatch`: a new attempt of a delivery; `verbatim`: the original record as it was. */
  kind: 'dispatch' | 'verbatim';
}

export type ReplayPlan = { ok: true; record: ReplayRecord } | { ok: false; reason: string };

const DISPATCH_TOPIC = /^email\.dispatch\./;

export function replayRecord(letter: DeadLetter, now: Date): ReplayPlan {
  const { source } = letter;
  if (source.value === null) return { ok: false, reason: 'the dead letter has no record value to replay' };
  const value = Buffer.from(source.value, source.valueEncoding === 'base64' ? 'base64' : 'utf8');
  if (DISPATCH_TOPIC.test(source.topic)) {
    let record;
    try {
      record = EmailReadyForDispatchContract.decode(value);
    } catch {
      record = undefined; // an invalid dispatch record: replayed as it was, below
    }
    if (record) {
      const { notBefore: _notBefore, ...rest } = record;
      const next = { ...rest, attempt: record.attempt + 1, replayedAt: now.toISOString() };
      return {
        ok: true,
        record: { topic: Topics.dispatch(record.priority), key: record.domain, value: EmailReadyForDispatchContract.encode(next), headers: source.headers, kind: 'dispatch' },
      };
    }
  }
  const topic = letter.code === 'PRIORITY_MISMATCH' ? Topics.requested : source.topic;
  return { ok: true, record: { topic, key: source.key, value, headers: source.headers, kind: 'verbatim' } };
}
