/**
 * The analytics sink: `email.events` → ClickHouse, in batches bounded by size and age (longer
 * while events come in fast: batchDue), with offsets committed only after the insert that holds
 * their rows returned.
 *
 * Fetching and inserting are decoupled: `eachBatch` decodes records into a shared buffer and
 * moves the fetch position on (resolveOffset) without committing; the flusher inserts one
 * batch at a time and commits what it covered. A failing insert is retried forever with the
 * same rows and token; meanwhile the buffer fills to `maxBufferedRows` and consumption pauses
 * (back-pressure), to resume once ClickHouse took the backlog. Nothing is dropped: whatever is
 * not committed is fetched again after a restart.
 *
 * Idempotency (details in README.md): a retried insert carries the same deduplication token,
 * so ClickHouse drops what an earlier attempt stored; after a crash or rebalance, the first
 * batch of each partition is reconciled against the offsets ClickHouse already holds.
 */
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Consumer, EachBatchPayload, KafkaMessage } from 'kafkajs';
import type { Logger } from 'pino';
import { EmailEventContract } from '../../../shared/contracts/email-event.js';
import { backoffDelayMs } from '../../../shared/backoff.js';
import type { StageRecord } from '../../../shared/kafka/stage-consumer.js';
import { BatchBuffer, batchDue, type Batch, type BatchTiming } from './batch-buffer.js';
import { toEventRow } from './event-row.js';
import type { EventsWriter } from './events-writer.js';
import { PartitionProgress } from './partition-progress.js';
import { ConsumptionGate } from './consumption-gate.js';
import { PermanentError } from '../../../shared/errors.js';
import { undecodableOf } from '../../../shared/kafka/undecodable-batches.js';

export interface SinkOptions extends BatchTiming {
  consumer: Consumer;
  topic: string;
  writer: EventsWriter;
  /** Parks a malformed record on `email.dead`; resolves once that is durable. */
  deadLetter(record: StageRecord, code: string, reason: string): Promise<void>;
  logger: Logger;
  maxBufferedRows: number;
  /** Longest pause between retries of a failing insert. */
  retryMaxMs: number;
  fromBeginning?: boolean;
}

const tpKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`;
const RETRY_INITIAL_MS = 200;

/**
 * Emits 'inserted' (rows, ms), 'insertFailed' (err, attempt), 'processed' (topic, records
 * committed), 'committed' (topic, partition, offset), 'lag' (topic, partition, lag),
 * 'rebalanced', 'deadLettered' (code), 'skipped' (fate, n), 'paused' / 'resumed' (reason),
 * 'buffered' (rows) and 'batchAge' (ms: how long a batch with rows waited for its insert) for
 * metrics and tests.
 */
export class ClickHouseSink extends EventEmitter {
  private readonly buffer = new BatchBuffer();
  private readonly progress = new PartitionProgress();
  private readonly gate: ConsumptionGate;
  private inFlight: { batch: Batch; done: Promise<void> } | null = null;
  private flushTimer?: NodeJS.Timeout;
  private assigned = new Set<number>();
  private highWatermarks = new Map<number, bigint>();
  private committed = new Map<number, bigint>();
  private stopping = false;
  private stopped?: Promise<void>;
  private readonly abort = new AbortController();
  private activeBatches = new Set<Promise<void>>();
  private lastInsertError: Error | null = null;

  constructor(private readonly opts: SinkOptions) {
    super();
    this.gate = new ConsumptionGate(opts.consumer, opts.topic);
  }

  async start(): Promise<void> {
    const { consumer, topic } = this.opts;
    consumer.on(consumer.events.GROUP_JOIN, (e) => this.onAssignment(e.payload.memberAssignment[topic] ?? []));
    await consumer.subscribe({ topic, fromBeginning: this.opts.fromBeginning ?? true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 4,
      eachBatch: (payload) => this.track(this.eachBatch(payload)),
    });
  }

  /** Rows held in memory: buffered plus being inserted. */
  get bufferedRows(): number {
    return this.buffer.size + (this.inFlight?.batch.rows.length ?? 0);
  }

  /** Null when the last insert succeeded (or none was tried), else why it failed. */
  get insertProblem(): string | null {
    return this.lastInsertError ? `ClickHouse insert failing: ${this.lastInsertError.message}` : null;
  }

  private track(p: Promise<void>): Promise<void> {
    this.activeBatches.add(p);
    return p.finally(() => this.activeBatches.delete(p));
  }

  private onAssignment(partitions: number[]): void {
    // Kafka restarts every assigned partition from its committed offset: what is buffered
    // will come again, and what other members stored meanwhile must be looked up again.
    const dropped = this.buffer.clear();
    this.progress.reset();
    this.assigned = new Set(partitions);
    this.gate.assign(partitions);
    this.opts.logger.info({ topic: this.opts.topic, partitions, droppedBufferedRows: dropped }, 'partitions assigned');
    this.emit('rebalanced');
    this.emit('buffered', this.bufferedRows);
  }

  private async eachBatch({ batch, resolveOffset }: EachBatchPayload): Promise<void> {
    const { topic, partition } = batch;
    if (this.stopping || this.gate.isWaiting(partition) || batch.messages.length === 0) return;
    this.highWatermarks.set(partition, BigInt(batch.highWatermark));
    const tp = tpKey(topic, partition);
    if (!this.progress.isKnown(tp) && !(await this.reconcile(topic, partition, batch.messages[0].offset))) return;
    const skipped = { held: 0, stored: 0 };
    for (const message of batch.messages) {
      const fate = this.progress.fate(tp, message.offset);
      const at = { topic, partition, offset: message.offset };
      if (fate !== 'new') {
        skipped[fate]++;
        if (fate === 'stored') this.buffer.mark(at);
      } else if (!(await this.append(message, topic, partition))) {
        break;
      }
      this.progress.handled(tp, message.offset);
      resolveOffset(message.offset);
    }
    for (const fate of ['held', 'stored'] as const) if (skipped[fate] > 0) this.emit('skipped', fate, skipped[fate]);
    this.emitLag(partition);
    this.emit('buffered', this.bufferedRows);
    this.updateBackpressure();
    this.maybeFlush();
  }

  /** Learns which offsets of the partition ClickHouse already holds; false (partition paused) when it cannot. */
  private async reconcile(topic: string, partition: number, fromOffset: string): Promise<boolean> {
    // An insert still running may hold this partition's rows: look only once it is done.
    if (this.inFlight) {
      this.gate.waitFor(partition, 50);
      return false;
    }
    try {
      const stored = await this.opts.writer.storedOffsets(topic, partition, fromOffset);
      this.progress.reconciled(tpKey(topic, partition), stored);
      // The fetch of a newly assigned partition starts at its committed offset.
      if (!this.committed.has(partition)) this.committed.set(partition, BigInt(fromOffset));
      if (stored.size > 0) this.opts.logger.info({ topic, partition, offset: fromOffset, stored: stored.size }, 'records already in ClickHouse will be skipped');
      return true;
    } catch (err) {
      this.opts.logger.warn({ topic, partition, offset: fromOffset, err }, 'cannot look up stored offsets; retrying');
      this.gate.waitFor(partition, this.opts.retryMaxMs);
      return false;
    }
  }

  /** Buffers a record's row, or dead-letters it; false (partition paused) if the dead letter failed. */
  private async append(message: KafkaMessage, topic: string, partition: number): Promise<boolean> {
    const at = { topic, partition, offset: message.offset };
    // A placeholder of a batch kafkajs could not decode: skip it, or park the batch's raw bytes.
    const undecodable = undecodableOf(message);
    if (undecodable?.kind === 'skip') {
      this.buffer.mark(at);
      return true;
    }
    let row;
    try {
      if (undecodable) throw new PermanentError('UNDECODABLE_BATCH', undecodable.reason);
      row = toEventRow(EmailEventContract.decode(message.value), at);
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'VALIDATION_FAILED';
      const parked = undecodable ? ({ ...message, headers: {} } as KafkaMessage) : message;
      try {
        await this.opts.deadLetter({ topic, partition, message: parked }, code, (err as Error).message);
      } catch (dlErr) {
        this.opts.logger.warn({ topic, partition, offset: message.offset, err: dlErr }, 'cannot dead-letter a malformed event; retrying');
        this.gate.waitFor(partition, 1000);
        return false;
      }
      this.opts.logger.warn({ topic, partition, offset: message.offset, code, reason: (err as Error).message }, 'malformed event dead-lettered');
      this.emit('deadLettered', code);
      this.buffer.mark(at);
      return true;
    }
    this.buffer.add(row, at);
    return true;
  }

  /** Pauses every partition at `maxBufferedRows` held, resumes below half of it. */
  private updateBackpressure(): void {
    const { topic, maxBufferedRows } = this.opts;
    const held = this.bufferedRows;
    if (!this.gate.isBackpressured && held >= maxBufferedRows) {
      this.gate.setBackpressure(true);
      this.opts.logger.info({ topic, bufferedRows: held, maxBufferedRows }, 'pausing consumption until ClickHouse catches up');
      this.emit('paused', 'backpressure');
    } else if (this.gate.isBackpressured && held < maxBufferedRows / 2) {
      this.gate.setBackpressure(false);
      this.opts.logger.debug({ topic, bufferedRows: held }, 'resuming consumption');
      this.emit('resumed', 'backpressure');
    }
  }

  private maybeFlush(): void {
    if (this.inFlight || this.buffer.isEmpty || this.abort.signal.aborted) return;
    const ageMs = this.buffer.ageMs;
    const { due, inMs } = this.stopping ? { due: true, inMs: 0 } : batchDue(this.buffer.size, ageMs, this.opts);
    if (due) {
      clearTimeout(this.flushTimer);
      this.flushTimer = undefined;
      const batch = this.buffer.take();
      if (batch.rows.length > 0) this.emit('batchAge', ageMs);
      this.inFlight = { batch, done: this.insertAndCommit(batch) };
      return;
    }
    // A timer set earlier may fire too soon (more rows came since): it checks again and re-arms.
    this.flushTimer ??= setTimeout(() => {
      this.flushTimer = undefined;
      this.maybeFlush();
    }, Math.max(1, inMs));
  }

  private async insertAndCommit(batch: Batch): Promise<void> {
    try {
      if (!(await this.insertWithRetry(batch))) return;
      await this.commit(batch);
      if (batch.rows.length > 0) this.emit('processed', this.opts.topic, batch.rows.length);
    } finally {
      this.inFlight = null;
      this.emit('buffered', this.bufferedRows);
      this.updateBackpressure();
      this.maybeFlush();
    }
  }

  /** Inserts until it succeeds; false if the sink stopped first (nothing committed, nothing lost). */
  private async insertWithRetry(batch: Batch): Promise<boolean> {
    if (batch.rows.length === 0) return true;
    for (let attempt = 1; ; attempt++) {
      const started = performance.now();
      try {
        await this.opts.writer.insert(batch.rows, batch.token);
        this.lastInsertError = null;
        this.emit('inserted', batch.rows.length, performance.now() - started);
        return true;
      } catch (err) {
        this.lastInsertError = err as Error;
        this.emit('insertFailed', err, attempt);
        const delay = backoffDelayMs(attempt, { initialMs: RETRY_INITIAL_MS, maxMs: this.opts.retryMaxMs });
        this.opts.logger.warn({ err, attempt, rows: batch.rows.length, token: batch.token, retryInMs: delay }, 'ClickHouse insert failed; retrying the same batch');
        try {
          await sleep(delay, undefined, { signal: this.abort.signal });
        } catch {
          return false;
        }
      }
    }
  }

  private async commit(batch: Batch): Promise<void> {
    const { consumer, topic } = this.opts;
    // A partition that moved to another member during the insert is theirs to commit now.
    // Never move a commit backwards (a batch re-reading a partition after a rebalance can end
    // below what an insert still running at the rebalance committed).
    const offsets = batch.commits.filter((c) => c.topic === topic && this.assigned.has(c.partition) && BigInt(c.offset) > (this.committed.get(c.partition) ?? -1n));
    if (offsets.length === 0) return;
    try {
      await consumer.commitOffsets(offsets);
    } catch (err) {
      // The rows are stored; after the rebalance the partition is reconciled and they are skipped.
      this.opts.logger.warn({ err, topic }, 'offset commit failed after insert');
      return;
    }
    for (const c of offsets) {
      this.committed.set(c.partition, BigInt(c.offset));
      this.emit('committed', c.topic, c.partition, c.offset);
      this.emitLag(c.partition);
    }
  }

  private emitLag(partition: number): void {
    const hw = this.highWatermarks.get(partition);
    if (hw === undefined) return;
    const committed = this.committed.get(partition) ?? 0n;
    this.emit('lag', this.opts.topic, partition, Number(hw > committed ? hw - committed : 0n));
  }

  /**
   * Stops fetching, inserts and commits what is buffered (waiting at most `graceMs` for
   * ClickHouse), then stops the consumer. Safe to call twice: later calls wait for the first.
   */
  stop(graceMs = 10_000): Promise<void> {
    this.stopped ??= this.drainAndStop(graceMs);
    return this.stopped;
  }

  private async drainAndStop(graceMs: number): Promise<void> {
    this.stopping = true;
    this.gate.close();
    await Promise.allSettled([...this.activeBatches]);
    const deadline = setTimeout(() => this.abort.abort(), graceMs);
    // An insert that never returns (ClickHouse hanging) must not hold shutdown past the grace period.
    const gaveUp = new Promise<void>((resolve) => this.abort.signal.addEventListener('abort', () => resolve(), { once: true }));
    try {
      while (this.inFlight || !this.buffer.isEmpty) {
        this.maybeFlush();
        if (this.inFlight) await Promise.race([this.inFlight.done, gaveUp]);
        if (this.abort.signal.aborted) {
          this.opts.logger.warn({ bufferedRows: this.bufferedRows }, 'stopping with rows not inserted; they stay uncommitted and are read again on restart');
          break;
        }
      }
    } finally {
      clearTimeout(deadline);
      clearTimeout(this.flushTimer);
      this.abort.abort();
      await this.opts.consumer.stop();
    }
  }
}
