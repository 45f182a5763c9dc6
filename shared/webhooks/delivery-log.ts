/**
 * The delivery log an API replica answers `GET /v1/webhooks/:id/deliveries` from: every attempt
 * the webhooks service makes is on `email.webhooks.deliveries` (keyed by endpoint id, retention
 * 3 days; one record holds an endpoint's attempts of a short window), which every API replica
 * reads into memory keeping the newest `perEndpoint` attempts of each endpoint (a ring per
 * endpoint, so memory is bounded by endpoints × size).
 * Reading starts at the retention's start and does not hold up the API's start-up.
 */
import { randomUUID } from 'node:crypto';
import type { Consumer, Kafka } from 'kafkajs';
import { LONE_READER } from '../kafka/client.js';
import type { Logger } from 'pino';
import { WEBHOOK_DELIVERIES_TOPIC, decodeDeliveryLogRecord, type DeliveryAttempt } from './delivery-job.js';

export class DeliveryLog {
  private readonly rings = new Map<string, DeliveryAttempt[]>();

  constructor(private readonly perEndpoint: number) {}

  add(a: DeliveryAttempt): void {
    let ring = this.rings.get(a.endpointId);
    if (!ring) this.rings.set(a.endpointId, (ring = []));
    ring.push(a);
    if (ring.length > this.perEndpoint * 2) ring.splice(0, ring.length - this.perEndpoint);
  }

  /** The endpoint's attempts, newest first (at most `limit`). */
  recent(endpointId: string, limit = this.perEndpoint): DeliveryAttempt[] {
    const ring = this.rings.get(endpointId) ?? [];
    return ring.slice(-Math.min(limit, this.perEndpoint)).reverse();
  }

  forget(endpointId: string): void {
    this.rings.delete(endpointId);
  }
}

/** Reads `email.webhooks.deliveries` into a DeliveryLog (throwaway group, deleted on stop). */
export async function openDeliveryLog(opts: { kafka: Kafka; logger: Logger; perEndpoint: number; topic?: string }): Promise<{ log: DeliveryLog; stop(): Promise<void> }> {
  const log = new DeliveryLog(opts.perEndpoint);
  const topic = opts.topic ?? WEBHOOK_DELIVERIES_TOPIC;
  const groupId = `postline-webhook-log-${randomUUID()}`;
  const consumer: Consumer = opts.kafka.consumer({ groupId, ...LONE_READER });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch }) => {
      for (const m of batch.messages) {
        try {
          for (const a of decodeDeliveryLogRecord(m.value)) log.add(a);
        } catch (err) {
          opts.logger.warn({ topic, partition: batch.partition, offset: m.offset, err }, 'skipping undecodable delivery log record');
        }
      }
    },
  });
  return {
    log,
    async stop() {
      await consumer.disconnect();
      const admin = opts.kafka.admin();
      await admin.connect();
      await admin.deleteGroups([groupId]).catch(() => undefined);
      await admin.disconnect();
    },
  };
}
