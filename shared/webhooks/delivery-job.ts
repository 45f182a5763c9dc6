/**
 * A webhook delivery waiting for its next attempt: what the webhooks service puts on its retry
 * tiers (`email.webhooks.retry.<tier>`, keyed by the message id so one message's deliveries
 * stay in one partition), and what a replay puts on the first tier to be delivered again. The
 * body's `data` travels as it will be sent; the signature is computed at each attempt (with
 * the secrets signing then). Pure tier choice in `nextTier`.
 */
import { Type, type Static } from '@sinclair/typebox';
import { contract } from '../contracts/codec.js';

export const WEBHOOK_JOB_VERSION = 1;

/** The retry delays, in order: attempt n+1 waits tier n. After the last one the delivery is given up. */
export const WEBHOOK_RETRY_TIERS = [
  { name: '5s', ms: 5_000 },
  { name: '1m', ms: 60_000 },
  { name: '10m', ms: 600_000 },
  { name: '1h', ms: 3_600_000 },
  { name: '6h', ms: 6 * 3_600_000 },
  { name: '24h', ms: 24 * 3_600_000 },
] as const;

export const webhookRetryTopic = (tier: string): string => `email.webhooks.retry.${tier}`;
export const WEBHOOK_RETRY_TOPICS = WEBHOOK_RETRY_TIERS.map((t) => webhookRetryTopic(t.name));
/** Attempts to the endpoint, log records (email.webhooks.deliveries). */
export const WEBHOOK_DELIVERIES_TOPIC = 'email.webhooks.deliveries';

export const WebhookJobSchema = Type.Object(
  {
    schemaVersion: Type.Literal(WEBHOOK_JOB_VERSION),
    endpointId: Type.String({ minLength: 1 }),
    tenant: Type.String(),
    /** The `webhook-id` header: the event id (or inbound mail id), the same at every attempt. */
    webhookId: Type.String({ minLength: 1 }),
    type: Type.String({ minLength: 1 }),
    /** The message the record is about (ordering key); '' for operational events. */
    messageId: Type.String(),
    /** The body's `timestamp`: when the event happened. */
    timestamp: Type.String({ format: 'date-time' }),
    data: Type.Unknown(),
    /** Attempts made so far (0 for a replay not yet tried). */
    attempt: Type.Integer({ minimum: 0 }),
    firstAttemptAt: Type.String({ format: 'date-time' }),
    /** Not to be attempted before this time (ISO-8601). */
    notBefore: Type.String({ format: 'date-time' }),
    /** Sequence of this delivery among the endpoint's deliveries of the message (ordering). */
    seq: Type.Optional(Type.Integer({ minimum: 0 })),
    replay: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type WebhookJob = Static<typeof WebhookJobSchema>;
export const WebhookJobContract = contract('WebhookJob', WEBHOOK_JOB_VERSION, WebhookJobSchema);

/** The tier for the attempt after `attemptsMade` failed attempts, or undefined when it is time to give up. */
export function nextTier(attemptsMade: number): (typeof WEBHOOK_RETRY_TIERS)[number] | undefined {
  return WEBHOOK_RETRY_TIERS[attemptsMade - 1];
}

export const DeliveryAttemptSchema = Type.Object(
  {
    endpointId: Type.String(),
    tenant: Type.String(),
    at: Type.String({ format: 'date-time' }),
    webhookId: Type.String(),
    type: Type.String(),
    messageId: Type.String(),
    attempt: Type.Integer({ minimum: 0 }),
    /** delivered (2xx), failed (will retry, `nextAttemptAt`), gave-up (past the last tier), skipped (endpoint disabled or gone). */
    outcome: Type.Union([Type.Literal('delivered'), Type.Literal('failed'), Type.Literal('gave-up'), Type.Literal('skipped')]),
    status: Type.Optional(Type.Integer()),
    latencyMs: Type.Optional(Type.Number()),
    error: Type.Optional(Type.String()),
    nextAttemptAt: Type.Optional(Type.String({ format: 'date-time' })),
    replay: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type DeliveryAttempt = Static<typeof DeliveryAttemptSchema>;
export const DeliveryAttemptContract = contract('WebhookDeliveryAttempt', 1, DeliveryAttemptSchema);

/** Attempts in one record on `email.webhooks.deliveries` at most (about 300 bytes each, well under 1 MiB). */
export const MAX_ATTEMPTS_PER_LOG_RECORD = 500;

/**
 * One record of the delivery log since version 2: an endpoint's attempts of a short window,
 * oldest first, in one record (keyed by the endpoint id) instead of one record per attempt.
 * Version-1 records (one bare `DeliveryAttempt`) are still read: see `decodeDeliveryLogRecord`.
 */
export const DeliveryAttemptBatchSchema = Type.Object(
  {
    schemaVersion: Type.Literal(2),
    endpointId: Type.String(),
    attempts: Type.Array(DeliveryAttemptSchema, { maxItems: MAX_ATTEMPTS_PER_LOG_RECORD }),
  },
  { additionalProperties: false },
);
export type DeliveryAttemptBatch = Static<typeof DeliveryAttemptBatchSchema>;
export const DeliveryAttemptBatchContract = contract('WebhookDeliveryAttemptBatch', 2, DeliveryAttemptBatchSchema);

/**
 * The attempts one delivery log record holds: a version-2 batch, or a version-1 record of a
 * single attempt (written before batching; the topic keeps 3 days). Throws ValidationError
 * (naming the batch's problems) when it is neither.
 */
export function decodeDeliveryLogRecord(value: Buffer | string | null): DeliveryAttempt[] {
  try {
    return DeliveryAttemptBatchContract.decode(value).attempts;
  } catch (batchErr) {
    try {
      return [DeliveryAttemptContract.decode(value)];
    } catch {
      throw batchErr;
    }
  }
}
