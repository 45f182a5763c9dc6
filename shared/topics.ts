/**
 * Topic names and how Postline creates them. Partition counts bound how far each stage can
 * scale out (one consumer per partition), so they are configuration, not constants.
 *
 * Priorities are isolated from request to retry: each has its own request lane
 * (`email.requested.<priority>`, what ingest produces to), dispatch topic and retry tiers
 * (`email.retry.<priority>.<tier>`), each consumed by its own consumer group, so a bulk backlog
 * never sits in front of a critical message in a partition. `email.requested` stays the one
 * simple contract for foreign producers (any priority, one shared lane), and the shared
 * `email.retry.<tier>` topics of earlier versions are still drained by the scheduler.
 */
import type { Priority } from './config.js';
import { PRIORITIES } from './config.js';
import { WEBHOOK_DELIVERIES_TOPIC, WEBHOOK_RETRY_TOPICS } from './webhooks/delivery-job.js';

export const RETRY_TIERS = ['1m', '5m', '15m', '1h'] as const;
export type RetryTier = (typeof RETRY_TIERS)[number];

export const Topics = {
  /** The shared request lane: any priority, for foreign producers. */
  requested: 'email.requested',
  /** A priority's own request lane: records on it must carry that priority (else PRIORITY_MISMATCH). */
  requestedFor: (p: Priority) => `email.requested.${p}`,
  dispatch: (p: Priority) => `email.dispatch.${p}`,
  /** A priority's retry tier (what the dispatcher writes). */
  retryFor: (p: Priority, tier: RetryTier) => `email.retry.${p}.${tier}`,
  /** The shared retry tiers of earlier versions: nothing writes them, the scheduler drains them. */
  retry: (tier: RetryTier) => `email.retry.${tier}`,
  dead: 'email.dead',
  events: 'email.events',
  suppressions: 'email.suppressions',
  templates: 'email.templates',
  idempotency: 'email.idempotency',
  /** Requests held until their `sendAt` (scheduled send), and their cancellations. */
  scheduled: 'email.scheduled',
  /** Customers' webhook endpoints (compacted, keyed by endpoint id). */
  webhooks: 'email.webhooks',
  /** Inbound routes: which tenant owns which inbound domain (compacted, keyed by domain). */
  inboundRoutes: 'email.inbound-routes',
  /** Mail received on a tenant's inbound domain, parsed (`InboundMail`), for the tenant's webhooks. */
  inbound: 'email.inbound',
  /** Administration: tenants, API keys (digests only), their last use and sender domains (compacted). */
  admin: 'email.admin',
  /** Cancelled messages (compacted, keyed by message id): the scheduler drops their scheduled requests and retries. */
  cancellations: 'email.cancellations',
} as const;

/** Every request topic the renderer consumes: each priority's lane and the shared one. */
export const requestTopics = (): string[] => [...PRIORITIES.map((p) => Topics.requestedFor(p)), Topics.requested];

export interface TopicSpec {
  topic: string;
  numPartitions: number;
  configEntries: Array<{ name: string; value: string }>;
}

export interface TopicSpecOptions {
  /**
   * The renderer's largest rendered message (`renderer.maxMessageBytes`, default 25 MiB): the
   * dispatch, retry and dead-letter topics are created to accept a record carrying it.
   */
  maxMessageBytes?: number;
}

const DAY = 24 * 3600_000;
const MiB = 1024 * 1024;
/** `renderer.maxMessageBytes`'s default (shared/config/renderer.ts). */
export const DEFAULT_MAX_MESSAGE_BYTES = 25 * MiB;

/**
 * `max.message.bytes` for topics that carry a rendered message of up to `maxMessageBytes`.
 * The MIME travels as a JSON string (CRLF escaped: ~5 % on 76-character lines), a dead letter
 * escapes it once more, and the envelope (up to 50 recipients), attempt bookkeeping, headers
 * and the record batch add at most a few tens of KiB: a quarter more plus 1 MiB covers all of it.
 */
export function recordLimitFor(maxMessageBytes: number): number {
  return Math.ceil(maxMessageBytes * 1.25) + MiB;
}

/**
 * `max.message.bytes` for the request topics: a raw-MIME request (the SMTP gateway's) carries a
 * message of up to `maxMessageBytes` base64-encoded (4/3) plus its envelope and fields.
 */
export function requestRecordLimitFor(maxMessageBytes: number): number {
  return Math.ceil((maxMessageBytes * 4) / 3) + MiB;
}

/** Every topic Postline uses, with partitions, retention and record size limits. */
export function topicSpecs(partitions: number, opts: TopicSpecOptions = {}): TopicSpec[] {
  const maxBytes = { name: 'max.message.bytes', value: String(recordLimitFor(opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES)) };
  const stream = (topic: string, retentionMs = 7 * DAY): TopicSpec => ({
    topic,
    numPartitions: partitions,
    configEntries: [{ name: 'retention.ms', value: String(retentionMs) }],
  });
  // Topics that carry rendered messages accept the largest one the renderer produces.
  const large = (spec: TopicSpec): TopicSpec => ({ ...spec, configEntries: [...spec.configEntries, maxBytes] });
  // Compacted state topics are read whole into memory by the stages that need them.
  const compacted = (topic: string): TopicSpec => ({
    topic,
    numPartitions: 1,
    configEntries: [{ name: 'cleanup.policy', value: 'compact' }],
  });
  // Retry topics hold messages up to the longest max age (bulk: 72 h) plus slack.
  const retry = (topic: string): TopicSpec => large(stream(topic, 5 * DAY));
  // Request topics accept a raw-MIME request carrying the largest message (SMTP gateway).
  const requestBytes = { name: 'max.message.bytes', value: String(requestRecordLimitFor(opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES)) };
  const request = (topic: string): TopicSpec => ({ ...stream(topic), configEntries: [...stream(topic).configEntries, requestBytes] });
  return [
    request(Topics.requested),
    ...PRIORITIES.map((p) => request(Topics.requestedFor(p))),
    ...PRIORITIES.map((p) => large(stream(Topics.dispatch(p)))),
    ...PRIORITIES.flatMap((p) => RETRY_TIERS.map((t) => retry(Topics.retryFor(p, t)))),
    ...RETRY_TIERS.map((t) => retry(Topics.retry(t))),
    large(stream(Topics.dead, 30 * DAY)),
    stream(Topics.events),
    compacted(Topics.suppressions),
    compacted(Topics.templates),
    // Scheduled requests wait here up to 30 days (plus slack); see services/scheduler.
    stream(Topics.scheduled, 32 * DAY),
    compacted(Topics.webhooks),
    compacted(Topics.inboundRoutes),
    compacted(Topics.admin),
    // Parsed inbound mail carries bodies and attachments.
    large(stream(Topics.inbound, 3 * DAY)),
    // A cancellation matters while the message may still be scheduled (30 days) or retried.
    {
      topic: Topics.cancellations,
      numPartitions: 1,
      configEntries: [
        { name: 'cleanup.policy', value: 'compact,delete' },
        { name: 'retention.ms', value: String(32 * DAY) },
      ],
    },
    // Webhook deliveries waiting for their next attempt (the longest tier is 24 h; inbound mail is large),
    // and every attempt, which the API's delivery log reads.
    ...WEBHOOK_RETRY_TOPICS.map((t) => large(stream(t, 3 * DAY))),
    stream(WEBHOOK_DELIVERIES_TOPIC, 3 * DAY),
    // Idempotency keys matter for 24 h; compaction keeps one record per key, deletion ages them out.
    {
      topic: Topics.idempotency,
      numPartitions: partitions,
      configEntries: [
        { name: 'cleanup.policy', value: 'compact,delete' },
        { name: 'retention.ms', value: String(2 * DAY) },
        // A claim must not be compacted away by a later one inside the 24 h idempotency window.
        { name: 'min.compaction.lag.ms', value: String(DAY) },
      ],
    },
  ];
}
