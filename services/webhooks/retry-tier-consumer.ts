/**
 * Holds each webhook retry tier partition until its head is due, then hands the due records to
 * the deliverer and commits once each is delivered or durably on its next tier. Every record of
 * a tier waits the same delay, so records are due in log order (like the pipeline's scheduler):
 * kafkajs `pause()` plus a timer resumes the partition — no polling, no handler sleeping.
 * Within one batch, one message's records go one after the other (its order).
 */
import { EventEmitter } from 'node:events';
import type { Consumer, EachBatchPayload } from 'kafkajs';
import type { Logger } from 'pino';
import type { EventPublisher } from '../../shared/events.js';
import { WebhookJobContract, type WebhookJob } from '../../shared/webhooks/delivery-job.js';
import { ValidationError } from '../../shared/errors.js';
import { PartitionHolds } from '../../shared/kafka/partition-holds.js';

export interface RetryTierDeps {
  consumer: Consumer;
  topics: string[];
  retry(job: WebhookJob): Promise<void>;
  events: Pick<EventPublisher, 'deadLetter'>;
  logger: Logger;
  now?: () => number;
}

/** Emits 'processed' (topic, ms), 'committed', 'lag', 'held' (topic, partition, ms), 'rebalanced'. */
export class RetryTierConsumer extends EventEmitter {
  private readonly holds = new PartitionHolds();
  private readonly now: () => number;

  constructor(private readonly deps: RetryTierDeps) {
    super();
    this.now = deps.now ?? Date.now;
  }

  async start(): Promise<void> {
    const { consumer } = this.deps;
    consumer.on(consumer.events.GROUP_JOIN, () => this.emit('rebalanced'));
    for (const topic of this.deps.topics) await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, partitionsConsumedConcurrently: this.deps.topics.length * 2, eachBatch: (p) => this.eachBatch(p) });
  }

  private async eachBatch({ batch, resolveOffset, pause, isRunning, isStale, heartbeat }: EachBatchPayload): Promise<void> {
    const { topic, partition } = batch;
    if (!isRunning() || isStale()) return;
    const ready: Array<{ offset: string; job?: WebhookJob; error?: ValidationError }> = [];
    let waitMs: number | undefined;
    for (const message of batch.messages) {
      let job: WebhookJob;
      try {
        job = WebhookJobContract.decode(message.value);
      } catch (err) {
        if (!(err instanceof ValidationError)) throw err;
        ready.push({ offset: message.offset, error: err });
        continue;
      }
      const due = Date.parse(job.notBefore) - this.now();
      if (due > 0) {
        waitMs = due;
        break;
      }
      ready.push({ offset: message.offset, job });
    }
    if (ready.length > 0) {
      const started = performance.now();
      const chains = new Map<string, Promise<void>>();
      const beat = setInterval(() => void heartbeat().catch(() => undefined), 1000);
      try {
        await Promise.all(
          ready.map((r) => {
            if (r.error) {
              const message = batch.messages.find((m) => m.offset === r.offset)!;
              return this.deps.events.deadLetter({ topic, partition, message }, r.error.code, r.error.message);
            }
            const job = r.job!;
            const key = `${job.endpointId}\u0000${job.messageId}`;
            const run = (chains.get(key) ?? Promise.resolve()).then(() => this.deps.retry(job));
            chains.set(key, run);
            return run;
          }),
        );
      } finally {
        clearInterval(beat);
      }
      const last = ready[ready.length - 1].offset;
      resolveOffset(last);
      const next = String(BigInt(last) + 1n);
      await this.deps.consumer.commitOffsets([{ topic, partition, offset: next }]);
      this.emit('committed', topic, partition, next);
      const ms = (performance.now() - started) / ready.length;
      for (let i = 0; i < ready.length; i++) this.emit('processed', topic, ms);
    }
    this.emit('lag', topic, partition, Math.max(0, Number(batch.highWatermark) - Number(batch.messages[0]?.offset ?? batch.highWatermark) - ready.length));
    if (waitMs !== undefined) {
      this.holds.hold(topic, partition, waitMs, pause);
      this.emit('held', topic, partition, waitMs);
    }
  }

  async stop(): Promise<void> {
    this.holds.clear();
    await this.deps.consumer.stop();
  }
}
