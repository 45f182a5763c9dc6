/**
 * Producing a submitted message the way the send API does: the record on its priority's
 * request lane and its `accepted` event together (one linger batch), resolved only once both
 * are acknowledged, so the gateway's 250 means what the API's 202 means. Past the deadline the
 * caller gets an error (the gateway answers 451); a late acknowledgement is logged, since the
 * client's retry then queues the message a second time.
 */
import type { Logger } from 'pino';
import { Topics } from '../../shared/topics.js';
import type { BatchingProducer } from '../../shared/kafka/batching-producer.js';
import type { EventPublisher } from '../../shared/events.js';
import type { SubmissionRecord } from './submission-record.js';

export interface SubmitterDeps {
  producer: Pick<BatchingProducer, 'send'>;
  events: Pick<EventPublisher, 'publish'>;
  timeoutMs: number;
  logger: Logger;
}

/** Rejected when the broker did not acknowledge in time. */
export class NotAcknowledged extends Error {}

export function submitter(deps: SubmitterDeps): (submission: SubmissionRecord) => Promise<void> {
  return async ({ record, value }) => {
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
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new NotAcknowledged(`no broker acknowledgement within ${deps.timeoutMs} ms`)), deps.timeoutMs);
    });
    try {
      await Promise.race([durable, expired]);
    } catch (err) {
      if (err instanceof NotAcknowledged) {
        durable.then(
          () => deps.logger.warn({ messageId: record.messageId, tenant: record.tenant }, 'acknowledged after the client was answered 451; its retry sends the message again'),
          () => undefined,
        );
      }
      throw err;
    } finally {
      clearTimeout(timer);
    }
  };
}
