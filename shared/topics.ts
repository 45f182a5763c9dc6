/**
 * Topic names and how Postline creates them. Partition counts bound how far each stage can
 * scale out (one consumer per partition), so they are configuration, not constants.
 */
import type { Priority } from './config.js';
import { PRIORITIES } from './config.js';

export const RETRY_TIERS = ['1m', '5m', '15m', '1h'] as const;
export type RetryTier = (typeof RETRY_TIERS)[number];

export const Topics = {
  requested: 'email.requested',
  dispatch: (p: Priority) => `email.dispatch.${p}`,
  retry: (tier: RetryTier) => `email.retry.${tier}`,
  dead: 'email.dead',
  events: 'email.events',
  suppressions: 'email.suppressions',
  templates: 'email.templates',
  idempotency: 'email.idempotency',
} as const;

export interface TopicSpec {
  topic: string;
  numPartitions: number;
  configEntries: Array<{ name: string; value: string }>;
}

const DAY = 24 * 3600_000;

/** Every topic Postline uses, with partitions and retention. */
export function topicSpecs(partitions: number): TopicSpec[] {
  const stream = (topic: string, retentionMs = 7 * DAY): TopicSpec => ({
    topic,
    numPartitions: partitions,
    configEntries: [{ name: 'retention.ms', value: String(retentionMs) }],
  });
  // Compacted state topics are read whole into memory by the stages that need them.
  const compacted = (topic: string): TopicSpec => ({
    topic,
    numPartitions: 1,
    configEntries: [{ name: 'cleanup.policy', value: 'compact' }],
  });
  return [
    stream(Topics.requested),
    ...PRIORITIES.map((p) => stream(Topics.dispatch(p))),
    // Retry topics hold messages up to the longest max age (bulk: 72 h) plus slack.
    ...RETRY_TIERS.map((t) => stream(Topics.retry(t), 5 * DAY)),
    stream(Topics.dead, 30 * DAY),
    stream(Topics.events),
    compacted(Topics.suppressions),
    compacted(Topics.templates),
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
