/**
 * The consume loop every stage shares: fetch batches, run the stage's handler on each record
 * with bounded concurrency (across partitions and within one), and commit a partition's offset
 * only up to the last record whose side effect is durable. On failure what finished is
 * committed and the error propagates, so the group restarts from the first unfinished record:
 * at-least-once, never at-most-once.
 *
 * One bad record never stops the stage: a handler that throws a `PermanentError` (the record
 * is invalid, too large for the next topic, its template throws, ...) gets the record parked
 * on `email.dead` with the error's code and reason (and a `failed` event when the record names
 * its message and tenant), and the offset moves past it. Only other errors are retried. A
 * fetched batch kafkajs cannot decode is dead-lettered as its raw bytes the same way
 * (`undecodable-batches.ts`).
 */
import { EventEmitter } from 'node:events';
import type { Consumer, EachBatchPayload, KafkaMessage } from 'kafkajs';
import type { Logger } from 'pino';
import { OffsetTracker } from './offset-tracker.js';
import { Semaphore } from '../semaphore.js';
import { PermanentError } from '../errors.js';
import { recordIds } from '../record-ids.js';
import { guardUndecodableBatches, undecodableOf, UNDECODABLE_HEADER } from './undecodable-batches.js';
import { withConsumedRecordSpan } from '../tracing.js';

export interface StageRecord {
  topic: string;
  partition: number;
  message: KafkaMessage;
}

/** Where records that fail permanently go: the stage's `EventPublisher` (`email.dead` + `failed` event). */
export interface DeadLetterSink {
  deadLetter(record: StageRecord, code: string, reason: string, ids?: { messageId?: string; tenant?: string }): Promise<void>;
}

export interface StageConsumerOptions {
  consumer: Consumer;
  topics: string[];
  /** Records handled at once across all partitions. */
  concurrency: number;
  /**
   * Sum of the values' sizes handled at once (default: unbounded). Bounds memory when records
   * are large (attachments): a record larger than this runs alone.
   */
  maxInFlightBytes?: number;
  /**
   * Resolves once the record's side effect is durable. Throws a `PermanentError` when the
   * record can never be processed (it is dead-lettered and skipped); any other error stops
   * and retries from here.
   */
  handle(record: StageRecord): Promise<void>;
  /** Takes the records that fail permanently (durable when it resolves). */
  deadLetters: DeadLetterSink;
  logger: Logger;
  fromBeginning?: boolean;
  /** Commit at least this often while a batch is in progress (default 500 ms). */
  commitIntervalMs?: number;
}

/**
 * Emits 'processed' (topic, ms), 'failed' (topic, err), 'deadLettered' (topic, code),
 * 'committed' (topic, partition, offset), 'lag' (topic, partition, lag) for metrics.
 */
export class StageConsumer extends EventEmitter {
  private stopping = false;
  /** Shared by every partition's batch. */
  private readonly semaphore: Semaphore;
  private readonly bytes?: Semaphore;

  constructor(private readonly opts: StageConsumerOptions) {
    super();
    guardUndecodableBatches();
    this.semaphore = new Semaphore(opts.concurrency);
    if (opts.maxInFlightBytes !== undefined) this.bytes = new Semaphore(opts.maxInFlightBytes);
  }

  async start(): Promise<void> {
    const { consumer, topics } = this.opts;
    consumer.on(consumer.events.GROUP_JOIN, () => this.emit('rebalanced'));
    for (const topic of topics) await consumer.subscribe({ topic, fromBeginning: this.opts.fromBeginning ?? true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: Math.max(1, Math.min(this.opts.concurrency, 16)),
      eachBatch: (payload) => this.eachBatch(payload),
    });
  }

  private async eachBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, heartbeat, isRunning, isStale, resolveOffset, commitOffsetsIfNecessary } = payload;
    const { topic, partition } = batch;
    const tracker = new OffsetTracker();
    const interval = this.opts.commitIntervalMs ?? 500;
    const inFlight = new Set<Promise<void>>();
    let lastCommit = Date.now();
    let failure: unknown;

    const commit = async (): Promise<void> => {
      const offset = tracker.takeCommittable();
      if (offset === null) return;
      // Resolving moves the fetch position; committing makes it survive a restart. The batch
      // payload's commit still works while the consumer is stopping (consumer.commitOffsets
      // silently does nothing then), so work finished during a clean shutdown is not redone.
      resolveOffset(String(BigInt(offset) - 1n));
      await commitOffsetsIfNecessary({ topics: [{ topic, partitions: [{ partition, offset }] }] });
      lastCommit = Date.now();
      this.emit('committed', topic, partition, offset);
    };

    // Slow side effects (a hanging SMTP server) must not cost the group membership: keep
    // heartbeating while records are in flight, not only when a new one starts.
    const beat = setInterval(() => void heartbeat().catch(() => undefined), 1000);
    try {
      for (const message of batch.messages) {
        if (this.stopping || !isRunning() || isStale() || failure) break;
        const size = message.value?.length ?? 0;
        await this.semaphore.acquire();
        await this.bytes?.acquire(size);
        if (failure) {
          this.bytes?.release(size);
          this.semaphore.release();
          break;
        }
        tracker.start(message.offset);
        const started = performance.now();
        const record: StageRecord = { topic, partition, message };
        // The handler runs in the record's trace (its headers' context), so what it produces continues it.
        const p: Promise<void> = withConsumedRecordSpan(record, () => this.handleOrPark(record))
          .then(
            () => {
              tracker.finish(message.offset);
              this.emit('processed', topic, performance.now() - started);
            },
            (err: unknown) => {
              failure ??= err;
              this.emit('failed', topic, err);
            },
          )
          .finally(() => {
            this.bytes?.release(size);
            this.semaphore.release();
            inFlight.delete(p);
          });
        inFlight.add(p);
        if (Date.now() - lastCommit > interval) await commit();
      }
      await Promise.allSettled([...inFlight]);
      // Commit what finished even when a record failed; the failed one is retried after restart.
      await commit();
    } finally {
      clearInterval(beat);
    }
    const hw = Number(batch.highWatermark);
    const last = Number(batch.lastOffset());
    this.emit('lag', topic, partition, Math.max(0, hw - last - 1));
    if (failure) throw failure;
  }

  /** Runs the handler; a permanent failure parks the record (a failing dead letter is retried like any error). */
  private async handleOrPark(record: StageRecord): Promise<void> {
    const undecodable = undecodableOf(record.message);
    if (undecodable?.kind === 'skip') return;
    if (undecodable) {
      const { [UNDECODABLE_HEADER]: _marker, ...headers } = record.message.headers ?? {};
      return this.park({ ...record, message: { ...record.message, headers } as KafkaMessage }, 'UNDECODABLE_BATCH', undecodable.reason, {});
    }
    try {
      await this.opts.handle(record);
    } catch (err) {
      if (!(err instanceof PermanentError)) throw err;
      await this.park(record, err.code, err.message, recordIds(record.message.value));
    }
  }

  private async park(record: StageRecord, code: string, reason: string, ids: { messageId?: string; tenant?: string }): Promise<void> {
    const { topic, partition, message } = record;
    this.opts.logger.warn({ ...ids, topic, partition, offset: message.offset, code, reason }, 'record failed permanently; dead-lettered');
    await this.opts.deadLetters.deadLetter(record, code, reason, ids);
    this.emit('deadLettered', topic, code);
  }

  /** Stops taking new records; in-flight ones finish and are committed by the loop. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.opts.consumer.stop();
  }
}
