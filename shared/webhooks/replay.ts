/**
 * Replay (`POST /v1/webhooks/:id/replay {from, to}`): re-reads `email.events` from the first
 * record at or after `from` (the broker's time index: kafkajs `fetchTopicOffsetsByTimestamp`)
 * until records are past `to` or the end offsets as they were when the replay began, and puts
 * each event of the endpoint's tenant that the endpoint wants on the first retry tier, due now,
 * marked `replay`. The webhooks service then delivers them like any retry (same `webhook-id`
 * as the first time, so receivers can drop what they already had).
 */
import type { Kafka } from 'kafkajs';
import type { BatchingProducer } from '../kafka/batching-producer.js';
import { readTopicRange } from '../kafka/topic-range.js';
import { Topics } from '../topics.js';
import { EmailEventContract } from '../contracts/email-event.js';
import type { WebhookEndpoint } from '../contracts/webhook-endpoint.js';
import { WEBHOOK_JOB_VERSION, WebhookJobContract, webhookRetryTopic, WEBHOOK_RETRY_TIERS, type WebhookJob } from './delivery-job.js';
import { wants, webhookTypeOfEvent } from './webhook-message.js';

export interface ReplayResult {
  /** Events put back for delivery. */
  queued: number;
  /** Records of email.events read. */
  scanned: number;
  /** False when reading stopped at `maxRecords` or the time limit before `to`. */
  complete: boolean;
}

export async function replayEvents(opts: {
  kafka: Kafka;
  producer: Pick<BatchingProducer, 'send'>;
  endpoint: WebhookEndpoint;
  fromMs: number;
  toMs: number;
  maxRecords: number;
  timeoutMs?: number;
  topic?: string;
}): Promise<ReplayResult> {
  const { endpoint } = opts;
  const topic = opts.topic ?? Topics.events;
  const admin = opts.kafka.admin();
  await admin.connect();
  let starts: Array<{ partition: number; offset: string }>;
  try {
    // A partition with nothing at or after `from` answers -1: nothing to read there.
    starts = (await admin.fetchTopicOffsetsByTimestamp(topic, opts.fromMs)).filter((p) => BigInt(p.offset) >= 0n);
  } finally {
    await admin.disconnect();
  }
  const jobs: Array<Promise<unknown>> = [];
  let scanned = 0;
  let truncated = false;
  const now = new Date().toISOString();
  const tier = webhookRetryTopic(WEBHOOK_RETRY_TIERS[0].name);
  const range = await readTopicRange(
    opts.kafka,
    topic,
    { offsets: starts },
    (_partition, message, stop) => {
      if (++scanned > opts.maxRecords) {
        truncated = true;
        return stop();
      }
      if (Number(message.timestamp) > opts.toMs || !message.value) return;
      let event;
      try {
        event = EmailEventContract.decode(message.value);
      } catch {
        return;
      }
      const type = webhookTypeOfEvent(event.type);
      if (event.tenant !== endpoint.tenant || !wants({ ...endpoint, enabled: true }, type)) return;
      const at = Date.parse(event.at);
      if (at < opts.fromMs || at > opts.toMs) return;
      const job: WebhookJob = {
        schemaVersion: WEBHOOK_JOB_VERSION,
        endpointId: endpoint.id,
        tenant: endpoint.tenant,
        webhookId: event.eventId,
        type,
        messageId: event.messageId,
        timestamp: event.at,
        data: event,
        attempt: 0,
        firstAttemptAt: now,
        notBefore: now,
        replay: true,
      };
      jobs.push(opts.producer.send(tier, { key: event.messageId || endpoint.id, value: WebhookJobContract.encode(job) }));
    },
    { timeoutMs: opts.timeoutMs ?? 60_000, groupPrefix: 'postline-webhook-replay' },
  );
  await Promise.all(jobs);
  return { queued: jobs.length, scanned: Math.min(scanned, opts.maxRecords), complete: range.complete && !truncated };
}
