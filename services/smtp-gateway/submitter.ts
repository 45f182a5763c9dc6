/**
 * Producing a submitted message the way the send API does: the record on its priority's
 * request lane and its `accepted` event together (one linger batch), resolved only once both
 * are acknowledged, so the gateway's 250 means what the API's 202 means. Past the deadline the
 * caller gets an error (the gateway answers 451); a late acknowledgement is logged, since the
 * client's retry then queues the message a second time — unless it carries an
 * X-Postline-Idempotency-Key: then the claim (the send API's `IdempotencyStore`, the same
 * `email.idempotency` topic and rules) answers a retry with the first message's id.
 */
import type { Logger } from 'pino';
import { Topics } from '../../shared/topics.js';
import type { BatchingProducer } from '../../shared/kafka/batching-producer.js';
import type { EventPublisher } from '../../shared/events.js';
import type { IdempotencyStore } from '../ingest/idempotency-store.js';
import type { SubmissionRecord } from './submission-record.js';
import { urgentMail, type UrgentMail } from '../../shared/urgent-mail.js';

export interface SubmitterDeps {
  producer: Pick<BatchingProducer, 'send'>;
  events: Pick<EventPublisher, 'publish'>;
  /** Claims of X-Postline-Idempotency-Key; unset: the header is ignored. */
  idempotency?: Pick<IdempotencyStore, 'acquire' | 'markAccepted'>;
  timeoutMs: number;
  logger: Logger;
  /**
   * Where each submission's priority is reported as it comes in (default: the process's,
   * shared/urgent-mail.ts), so that the send API's batches in this process give way to it.
   */
  urgent?: Pick<UrgentMail, 'seen'>;
}

/** Rejected when the broker did not acknowledge in time. */
export class NotAcknowledged extends Error {}

/** A submission refused for what it is (an idempotency key in use), with its SMTP reply. */
export class SubmitRefused extends Error {
  constructor(
    message: string,
    readonly reason: string,
    readonly smtp: { code: number; status: string },
  ) {
    super(message);
  }
}

export function submitter(deps: SubmitterDeps): (submission: SubmissionRecord) => Promise<{ messageId: string; replayed: boolean }> {
  const { logger } = deps;

  function within<T>(work: Promise<T>, deadline: number): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new NotAcknowledged(`no broker acknowledgement within ${deps.timeoutMs} ms`)), Math.max(0, deadline - Date.now()));
    });
    return Promise.race([work, expired]).finally(() => clearTimeout(timer));
  }

  async function produce({ record, value }: SubmissionRecord, deadline: number): Promise<void> {
    const durable = Promise.all([
      deps.producer.send(Topics.requestedFor(record.priority), { key: record.messageId, value }),
      deps.events.publish({
        type: 'accepted',
        messageId: record.messageId,
        tenant: record.tenant,
        priority: record.priority,
        recipients: record.envelope.to,
        ...(record.tags ? { tags: record.tags } : {}),
      }),
    ]);
    try {
      await within(durable, deadline);
    } catch (err) {
      if (err instanceof NotAcknowledged) {
        durable.then(
          () => logger.warn({ messageId: record.messageId, tenant: record.tenant }, 'acknowledged after the client was answered 451'),
          () => undefined,
        );
      }
      throw err;
    }
  }

  const urgent = deps.urgent ?? urgentMail;
  return async (submission) => {
    const deadline = Date.now() + deps.timeoutMs;
    const { record } = submission;
    urgent.seen(record.priority);
    const key = record.idempotencyKey;
    const { fingerprint } = submission;
    // A record with a key always has its fingerprint (submission-record.ts).
    if (!key || !deps.idempotency || fingerprint === undefined) {
      await produce(submission, deadline);
      return { messageId: record.messageId, replayed: false };
    }
    const got = await within(deps.idempotency.acquire(record.tenant, key, fingerprint, record), deadline);
    switch (got.kind) {
      case 'replay':
        return { messageId: got.messageId, replayed: true };
      case 'conflict':
        throw new SubmitRefused('this X-Postline-Idempotency-Key was used for another message (From or recipients differ)', 'idempotency-conflict', { code: 554, status: '5.7.0' });
      case 'in-progress':
        throw new SubmitRefused('a message with this X-Postline-Idempotency-Key is being queued; try again later', 'idempotency-in-progress', { code: 451, status: '4.3.0' });
    }
    // Completing a claim a failed attempt left pending reproduces that attempt's id and time.
    const completing = got.completing ? { ...submission, record: { ...record, messageId: got.claim.messageId, acceptedAt: got.claim.acceptedAt } } : submission;
    const final = got.completing ? { ...completing, value: Buffer.from(JSON.stringify(completing.record)) } : submission;
    await produce(final, deadline);
    try {
      await deps.idempotency.markAccepted(record.tenant, key, got.claim);
    } catch (err) {
      logger.error({ messageId: final.record.messageId, tenant: record.tenant, err }, 'could not mark the idempotency claim accepted');
    }
    return { messageId: final.record.messageId, replayed: false };
  };
}
