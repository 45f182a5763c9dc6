/**
 * The consume loop every stage shares: fetch batches, run the stage's handler on each record
 * with bounded concurrency (across partitions and within one), and commit a partition's offset
 * only up to the last record whose side effect is durable. A slow record does not stop the
 * partition: the next fetches go on and their records are handled within the in-flight bounds.
 * On failure what finished is committed and the error propagates, so the group restarts from the
 * first unfinished record: at-least-once, never at-most-once.
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
  /** Commit at least this often while records finish (default 500 ms). */
  commitIntervalMs?: number;
  /**
   * What finished when a batch ends: committed then (default), or, with `interval`, then only
   * if the last commit is `commitIntervalMs` old, else within that interval. For readers off the
   * send path (`follower()`s of `email.events`), whose every fetch brings a batch for each
   * partition: committing each at its batch's end made ~7 offset commits per fetch (0.7 per
   * message at 10 messages/s, for each such reader). A crash then redoes at most that interval
   * of their records, which they handle at least once anyway.
   */
  batchEndCommit?: 'now' | 'interval';
  /**
   * Records one partition may start past its first unfinished one (default 10,000): a record
   * that hangs does not hold up the ones after it, but their finished offsets wait in memory
   * for the commit, so this bounds that wait.
   */
  maxUncommitted?: number;
}

/**
 * One partition's records between fetches. A record in flight does not hold up the records after
 * it: its batch returns once every record of it has *started*, so the next fetch comes and its
 * records are sent while a slow one (a hung SMTP transaction) is still running — within the
 * stage's in-flight bounds (records, bytes) and at most `maxUncommitted` records past the first
 * unfinished one. The commit still stops at the first unfinished record.
 */
interface PartitionFlow {
  /** The consumer group generation (join) this flow belongs to. */
  readonly generation: number;
  readonly tracker: OffsetTracker;
  readonly inFlight: Set<Promise<void>>;
  /** One past the last record started: records below it (fetched again after a seek) are skipped. */
  next?: bigint;
  failure?: unknown;
  /** The latest batch's payload: its commit works also after that batch returned. */
  payload: EachBatchPayload;
  lastCommit: number;
  timer?: NodeJS.Timeout;
  /** Commits run one after the other, so a later offset is never overwritten by an earlier one. */
  committing: Promise<void>;
}

/** Default `maxUncommitted`: records one partition may start past its first unfinished one. */
const MAX_UNCOMMITTED = 10_000;

/**
 * Emits 'processed' (topic, ms), 'failed' (topic, err), 'deadLettered' (topic, code),
 * 'committed' (topic, partition, offset), 'lag' (topic, partition, lag) for metrics; 'backlog'
 * (topic, partition, records not started) as each batch arrives; 'rebalanced' (group id,
 * partitions this member now holds) as it joins a generation of its group.
 */
export class StageConsumer extends EventEmitter {
  private stopping = false;
  /** Shared by every partition's batch. */
  private readonly semaphore: Semaphore;
  private readonly bytes?: Semaphore;
  private readonly flows = new Map<string, PartitionFlow>();
  private generation = 0;

  constructor(private readonly opts: StageConsumerOptions) {
    super();
    guardUndecodableBatches();
    this.semaphore = new Semaphore(opts.concurrency);
    if (opts.maxInFlightBytes !== undefined) this.bytes = new Semaphore(opts.maxInFlightBytes);
  }

  async start(): Promise<void> {
    const { consumer, topics } = this.opts;
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      // A new generation fetches from the committed offsets, with flows of its own. Records of
      // the old one still in flight finish and commit: a commit only ever covers records that
      // are done, so it is safe whoever owns the partition now (at worst it repeats work).
      this.generation++;
      const held = Object.values(e.payload.memberAssignment ?? {}).reduce((n, partitions) => n + partitions.length, 0);
      this.emit('rebalanced', e.payload.groupId, held);
    });
    for (const topic of topics) await consumer.subscribe({ topic, fromBeginning: this.opts.fromBeginning ?? true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: Math.max(1, Math.min(this.opts.concurrency, 16)),
      eachBatch: (payload) => this.eachBatch(payload),
    });
  }

  private flowOf(payload: EachBatchPayload): PartitionFlow {
    const key = `${payload.batch.topic}\u0000${payload.batch.partition}`;
    let flow = this.flows.get(key);
    if (!flow || flow.generation !== this.generation) {
      flow = { generation: this.generation, tracker: new OffsetTracker(), inFlight: new Set(), payload, lastCommit: Date.now(), committing: Promise.resolve() };
      this.flows.set(key, flow);
    }
    flow.payload = payload;
    return flow;
  }

  /** Commits what finished (serialised per partition). */
  private commit(flow: PartitionFlow): Promise<void> {
    clearTimeout(flow.timer);
    flow.timer = undefined;
    const run = async (): Promise<void> => {
      const offset = flow.tracker.takeCommittable();
      if (offset === null) return;
      const { topic, partition } = flow.payload.batch;
      // The batch payload's commit still works while the consumer is stopping (consumer.commitOffsets
      // silently does nothing then), so work finished during a clean shutdown is not redone.
      await flow.payload.commitOffsetsIfNecessary({ topics: [{ topic, partitions: [{ partition, offset }] }] });
      flow.lastCommit = Date.now();
      this.emit('committed', topic, partition, offset);
    };
    flow.committing = flow.committing.then(run, run);
    return flow.committing;
  }

  /** After a record finished outside its batch: commit now or within the commit interval. */
  private scheduleCommit(flow: PartitionFlow): void {
    if (flow.timer) return;
    const wait = Math.max(0, (this.opts.commitIntervalMs ?? 500) - (Date.now() - flow.lastCommit));
    flow.timer = setTimeout(() => {
      this.commit(flow).catch((err: unknown) => this.opts.logger.warn({ err, topic: flow.payload.batch.topic, partition: flow.payload.batch.partition }, 'offset commit failed; the records are handled again after a restart'));
    }, wait);
  }

  /** Waits for a flow's records in flight and commits what finished. */
  private async settle(flow: PartitionFlow): Promise<void> {
    while (flow.inFlight.size > 0) await Promise.allSettled([...flow.inFlight]);
    await this.commit(flow);
  }

  /**
   * A record of `flow` failed: every partition's records in flight settle and what finished is
   * committed (as when batches ran to their end), then the failure propagates and the group
   * restarts from the first unfinished record of each partition.
   */
  private async fail(flow: PartitionFlow): Promise<never> {
    const all = [...this.flows.values()];
    // kafkajs restarts the consumer from the committed offsets (not always with a new group
    // generation): every partition starts afresh.
    this.flows.clear();
    await Promise.allSettled(all.map((f) => this.settle(f)));
    throw flow.failure;
  }

  private async eachBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, heartbeat, isRunning, isStale, resolveOffset } = payload;
    const { topic, partition } = batch;
    const flow = this.flowOf(payload);
    const interval = this.opts.commitIntervalMs ?? 500;
    const maxUncommitted = this.opts.maxUncommitted ?? MAX_UNCOMMITTED;

    const hw = Number(batch.highWatermark);
    // Every record not started yet, this batch's and those past it, as the batch arrives.
    this.emit('backlog', topic, partition, Math.max(0, hw - Number(batch.firstOffset() ?? hw)));
    // Slow side effects (a hanging SMTP server) must not cost the group membership: keep
    // heartbeating while this batch waits for room, not only when a new record starts. A
    // heartbeat that hears of a rebalance ends the batch: the records not started are fetched
    // again by whoever owns the partition next, and the group need not wait for them all.
    let rebalancing = false;
    const beat = setInterval(
      () =>
        void heartbeat().catch((err: unknown) => {
          if ((err as { type?: unknown }).type === 'REBALANCE_IN_PROGRESS') rebalancing = true;
        }),
      1000,
    );
    try {
      for (const message of batch.messages) {
        if (this.stopping || !isRunning() || isStale() || flow.failure || rebalancing) break;
        const offset = BigInt(message.offset);
        if (flow.next !== undefined && offset < flow.next) {
          resolveOffset(message.offset); // started already (fetched again): move past it
          continue;
        }
        // A record stuck at the head: the ones after it finish and wait for the commit, bounded.
        while (flow.tracker.uncommitted >= maxUncommitted && flow.inFlight.size > 0 && !flow.failure) await Promise.race([...flow.inFlight]);
        const size = message.value?.length ?? 0;
        await this.semaphore.acquire();
        await this.bytes?.acquire(size);
        if (flow.failure || this.stopping) {
          this.bytes?.release(size);
          this.semaphore.release();
          break;
        }
        flow.tracker.start(message.offset);
        flow.next = offset + 1n;
        // The fetch position moves past every started record; the commit follows the tracker.
        resolveOffset(message.offset);
        this.run(flow, { topic, partition, message }, size);
        if (Date.now() - flow.lastCommit > interval) await this.commit(flow);
      }
      // Records still in flight finish on their own; what finished so far is committed now.
      if (flow.failure) await this.fail(flow);
      if (this.stopping) await this.settle(flow);
      else if (this.opts.batchEndCommit !== 'interval' || Date.now() - flow.lastCommit > interval) await this.commit(flow);
      else this.scheduleCommit(flow);
    } finally {
      clearInterval(beat);
    }
    this.emit('lag', topic, partition, Math.max(0, hw - Number(batch.lastOffset()) - 1));
  }

  /** Runs the handler for one record of `flow`; its slot and bytes are held until it settles. */
  private run(flow: PartitionFlow, record: StageRecord, size: number): void {
    const { topic, message } = record;
    const started = performance.now();
    // The handler runs in the record's trace (its headers' context), so what it produces continues it.
    const p: Promise<void> = withConsumedRecordSpan(record, () => this.handleOrPark(record))
      .then(
        () => {
          flow.tracker.finish(message.offset);
          this.emit('processed', topic, performance.now() - started);
        },
        (err: unknown) => {
          flow.failure ??= err;
          this.emit('failed', topic, err);
          this.restartAt(flow, record);
        },
      )
      .finally(() => {
        this.bytes?.release(size);
        this.semaphore.release();
        flow.inFlight.delete(p);
        if (!flow.failure && !this.stopping) this.scheduleCommit(flow);
      });
    flow.inFlight.add(p);
  }

  /**
   * A record failed after its batch returned: fetch its partition again from the first
   * unfinished record, so the next batch (which throws the failure, after the records in flight
   * settled and what finished is committed) comes even when nothing new is produced.
   */
  private restartAt(flow: PartitionFlow, record: StageRecord): void {
    const { topic, partition } = record;
    if (flow.generation !== this.generation || this.stopping) return;
    try {
      this.opts.consumer.seek({ topic, partition, offset: flow.tracker.firstUnfinished ?? record.message.offset });
      flow.next = undefined;
    } catch {
      // Not running any more: the restart reads from the committed offset anyway.
    }
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

  /**
   * Stops taking new records; in-flight ones finish and are committed, then the consumer stops.
   * A record that failed meanwhile is not committed: the group restarts from it next time.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    // No fetching while the records in flight finish (their fetch positions would only repeat).
    try {
      this.opts.consumer.pause(this.opts.topics.map((topic) => ({ topic })));
    } catch {
      // Not running: nothing is fetched anyway.
    }
    await Promise.allSettled([...this.flows.values()].map((f) => this.settle(f)));
    await this.opts.consumer.stop();
  }
}
