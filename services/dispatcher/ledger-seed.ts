/**
 * Start-up read of the recent tail of `email.events`: every delivery outcome a dispatcher
 * recorded within the window goes into the delivery ledger as complete. This is what makes the
 * ledger survive a crash: a dispatcher killed after a `sent` event was acked but before its offset
 * was committed gets the record again after the restart, and finds it here instead of sending
 * the message a second time.
 *
 * Sound because an outcome event is written last (after its retry record or dead letter), so a
 * durable event means the whole outcome is durable. Bounded by `windowMs` (where reading starts,
 * found by timestamp) and `timeoutMs`; a failure or timeout is logged and the dispatcher starts
 * with what was read — deduplication is a saving, never a condition for delivery.
 */
import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { EmailEventContract } from '../../shared/contracts/email-event.js';
import { Topics } from '../../shared/topics.js';
import { readTopicRange } from '../../shared/kafka/topic-range.js';
import type { DeliveryLedger } from './delivery-ledger.js';

/** Event types that settle recipients of an attempt (written by the dispatcher). */
const OUTCOME_TYPES = new Set(['sent', 'bounced', 'deferred', 'expired', 'failed']);

export interface SeedOptions {
  kafka: Kafka;
  ledger: DeliveryLedger<unknown>;
  windowMs: number;
  timeoutMs: number;
  /** The stage name on the dispatcher's events. */
  stage: string;
  groupPrefix: string;
  logger: Logger;
  topic?: string;
}

export interface SeedResult {
  events: number;
  remembered: number;
  ms: number;
  complete: boolean;
}

/** Reads outcome events of the last `windowMs` into the ledger. Never throws. */
export async function seedLedger(o: SeedOptions): Promise<SeedResult> {
  const started = performance.now();
  const result: SeedResult = { events: 0, remembered: 0, ms: 0, complete: true };
  if (!o.ledger.enabled || o.windowMs <= 0) return result;
  const topic = o.topic ?? Topics.events;
  try {
    const range = await readTopicRange(
      o.kafka,
      topic,
      { fromTimestamp: Date.now() - o.windowMs },
      (_partition, m) => {
        result.events++;
        result.remembered += remember(o, m.value);
      },
      { timeoutMs: o.timeoutMs, groupPrefix: `${o.groupPrefix}-ledger-seed` },
    );
    result.complete = range.complete;
  } catch (err) {
    result.complete = false;
    o.logger.warn({ err, topic }, 'could not read recent delivery outcomes; starting without them');
  }
  result.ms = performance.now() - started;
  return result;
}

/** Puts one event's recipients into the ledger when it is a dispatcher outcome; returns how many. */
function remember(o: SeedOptions, value: Buffer | null): number {
  let e;
  try {
    e = EmailEventContract.decode(value);
  } catch {
    return 0;
  }
  if (e.stage !== o.stage || !OUTCOME_TYPES.has(e.type) || e.attempt === undefined || !e.recipients?.length) return 0;
  o.ledger.complete(e.messageId, e.attempt, e.recipients, e.type === 'sent');
  return e.recipients.length;
}
