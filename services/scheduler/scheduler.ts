/**
 * The scheduler holds each retry partition until its head record is due, then moves due records
 * back to `email.dispatch.<priority>` and commits. Every record in a tier waits the same delay,
 * so records are due in log order: the head decides for the whole partition. Holding is
 * kafkajs `pause()` plus a timer that resumes the partition — no polling, and no handler ever
 * sleeps past the group's session timeout.
 */
import { EventEmitter } from 'node:events';
import type { Consumer, EachBatchPayload } from 'kafkajs';
import type { Logger } from 'pino';
import { Topics } from '../../shared/topics.js';
import { EmailReadyForDispatchContract, type EmailReadyForDispatch } from '../../shared/contracts/email-ready-for-dispatch.js';
import type { BatchingProducer } from '../../shared/kafka/batching-producer.js';
import type { EventPublisher } from '../../shared/events.js';
import { planHead } from './due-records.js';
import { PermanentError } from '../../shared/errors.js';
import { undecodableOf } from '../../shared/kafka/undecodable-batches.js';
import { PartitionHolds } from '../../shared/kafka/partition-holds.js';
import type { Cancellation } from '../../shared/contracts/cancellation.js';

export interface SchedulerDeps {
  consumer: Consumer;
  /** The retry tiers this scheduler holds: one lane's `email.retry.<priority>.<tier>` (or the shared tiers). */
  topics: string[];
  producer: BatchingProducer;
  events: EventPublisher;
  logger: Logger;
  now?: () => number;
  /** Cancelled messages (`DELETE /v1/emails/:id`): their retry records are dropped, not moved back. */
  cancellations?: { get(id: string): Cancellation | undefined };
}

/**
 * Emits 'moved' (topic, count), 'cancelled' (topic, count), 'held' (topic, partition, ms), 'invalid' (topic), and the
 * stage-consumer events ('processed', 'committed', 'lag', 'rebalanced') the shared metrics read.
 */
export class Scheduler extends EventEmitter {
  private readonly holds = new PartitionHolds();
  private readonly now: () => number;

  constructor(private readonly deps: SchedulerDeps) {
    super();
    this.now = deps.now ?? Date.now;
  }

  async start(): Promise<void> {
    const { consumer } = this.deps;
    consumer.on(consumer.events.GROUP_JOIN, () => this.emit('rebalanced'));
    for (const topic of this.deps.topics) await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.deps.topics.length * 2,
      eachBatch: (payload) => this.eachBatch(payload),
    });
  }

  private async eachBatch({ batch, resolveOffset, pause, isRunning, isStale, heartbeat }: EachBatchPayload): Promise<void> {
    const { topic, partition } = batch;
    if (!isRunning() || isStale()) return;
    const started = performance.now();
    const plan = planHead(batch.messages, this.now());
    if (plan.ready.length > 0) {
      await Promise.all(
        plan.ready.map((item) => {
          const message = batch.messages.find((m) => m.offset === item.offset)!;
          if (item.kind === 'invalid') {
            // A placeholder of a batch kafkajs could not decode: skip it, or park the batch's raw bytes.
            const undecodable = undecodableOf(message);
            if (undecodable?.kind === 'skip') return undefined;
            this.emit('invalid', topic);
            if (undecodable) return this.deps.events.deadLetter({ topic, partition, message: { ...message, headers: {} } as typeof message }, 'UNDECODABLE_BATCH', undecodable.reason);
            return this.deps.events.deadLetter({ topic, partition, message }, item.error.code, item.error.message);
          }
          const { record } = item;
          if (this.deps.cancellations?.get(record.messageId)?.tenant === record.tenant) return this.dropCancelled(topic, record);
          return this.deps.producer
            .send(Topics.dispatch(record.priority), {
              // The key it was dispatched with (its site with a routing file, see the renderer), else its domain.
              key: message.key ?? record.domain,
              value: EmailReadyForDispatchContract.encode(record),
              headers: message.headers,
            })
            .catch((err: unknown) => {
              // The dispatch topic refuses the record (e.g. too large for it): park it, go on.
              if (!(err instanceof PermanentError)) throw err;
              return this.deps.events.deadLetter({ topic, partition, message }, err.code, err.message, { messageId: record.messageId, tenant: record.tenant });
            });
        }),
      );
      // Commit only after every moved record is durably back on its dispatch topic.
      const last = plan.ready[plan.ready.length - 1].offset;
      resolveOffset(last);
      await this.deps.consumer.commitOffsets([{ topic, partition, offset: String(BigInt(last) + 1n) }]);
      this.emit('moved', topic, plan.ready.length);
      this.emit('committed', topic, partition, String(BigInt(last) + 1n));
      const ms = (performance.now() - started) / plan.ready.length;
      for (let i = 0; i < plan.ready.length; i++) this.emit('processed', topic, ms);
      await heartbeat();
    }
    this.emit('lag', topic, partition, Math.max(0, Number(batch.highWatermark) - Number(batch.messages[0]?.offset ?? batch.highWatermark) - plan.ready.length));
    if (plan.waitMs !== undefined) this.hold(topic, partition, plan.waitMs, pause);
  }

  /** A retry of a cancelled message: not moved back, a `cancelled` event instead (the only one: nothing else drops it). */
  private async dropCancelled(topic: string, record: EmailReadyForDispatch): Promise<void> {
    await this.deps.events.publish({ type: 'cancelled', messageId: record.messageId, tenant: record.tenant, priority: record.priority, domain: record.domain, recipients: record.envelope.to, attempt: record.attempt, reason: 'pending retry cancelled' });
    this.emit('cancelled', topic, 1);
    this.deps.logger.info({ messageId: record.messageId, tenant: record.tenant, topic, attempt: record.attempt }, 'retry of a cancelled message dropped');
  }

  private hold(topic: string, partition: number, ms: number, pause: () => () => void): void {
    this.holds.hold(topic, partition, ms, pause);
    this.emit('held', topic, partition, ms);
    this.deps.logger.debug({ topic, partition, holdMs: ms }, 'holding retry partition until its head is due');
  }

  async stop(): Promise<void> {
    this.holds.clear();
    await this.deps.consumer.stop();
  }
}
