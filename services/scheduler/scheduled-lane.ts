/**
 * The scheduled lane: reads this replica's partitions of `email.scheduled` into a ScheduleBook
 * and releases each request to its priority's request lane (`email.requested.<priority>`) when
 * its `sendAt` comes, then appends a `released` marker (the released ids) to the same partition.
 *
 * Durability: the committed offset of a partition is its oldest request still waiting, so a
 * restart re-reads everything not yet released; the markers read back on the way drop what an
 * earlier run did release, and the cancellation table drops what was cancelled. The marker is
 * written after the request is acknowledged on its lane: a crash between the two releases that
 * request again after the restart (same message id: at least once, like every stage).
 *
 * Memory: bodies are held only within `horizonMs` of their sendAt; when entries without a body
 * come within it, the partition is re-read (`seek`) from the oldest of them.
 */
import { EventEmitter } from 'node:events';
import type { Consumer, EachBatchPayload, IHeaders, KafkaMessage } from 'kafkajs';
import type { Logger } from 'pino';
import { Topics } from '../../shared/topics.js';
import { EmailRequestedContract } from '../../shared/contracts/email-requested.js';
import type { Cancellation } from '../../shared/contracts/cancellation.js';
import type { BatchingProducer } from '../../shared/kafka/batching-producer.js';
import type { EventPublisher } from '../../shared/events.js';
import { PermanentError, ValidationError } from '../../shared/errors.js';
import { ScheduleBook, type CancelOutcome, type ScheduledEntry } from './schedule-book.js';

/** Header of the scheduler's own records on `email.scheduled`: a `released` marker. */
export const MARKER_HEADER = 'postline-schedule-marker';
/** Header on a released request: the renderer renders it whatever its sendAt says (no second parking). */
export const RELEASED_HEADER = 'postline-released';

export interface ScheduledLaneDeps {
  consumer: Consumer;
  producer: BatchingProducer;
  events: EventPublisher;
  logger: Logger;
  horizonMs: number;
  /** Cancelled messages (email.cancellations), read whole. */
  cancellations: { get(id: string): Cancellation | undefined };
  now?: () => number;
}

/**
 * Emits 'size' (scheduled count), 'released' (latenessMs[] of release vs sendAt), 'cancelled'
 * (count), 'invalid' (), and the stage-consumer events the shared metrics read.
 */
export class ScheduledLane extends EventEmitter {
  readonly book: ScheduleBook;
  /** Per partition: the next offset not yet read (re-reads below it only fill bodies). */
  private readonly scanned = new Map<number, number>();
  private readonly committed = new Map<number, number>();
  private readonly commitAt = new Map<number, number>();
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = false;
  private readonly now: () => number;

  constructor(private readonly deps: ScheduledLaneDeps) {
    super();
    this.book = new ScheduleBook(deps.horizonMs);
    this.now = deps.now ?? Date.now;
  }

  async start(): Promise<void> {
    const { consumer } = this.deps;
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      this.emit('rebalanced');
      const mine = new Set(payload.memberAssignment[Topics.scheduled] ?? []);
      for (const p of [...this.scanned.keys()]) {
        // Partitions that moved away are forgotten; kept ones are re-read from their committed offset.
        if (!mine.has(p)) {
          this.book.dropPartition(p);
          this.scanned.delete(p);
          this.committed.delete(p);
        }
      }
      this.emit('size', this.book.size);
    });
    await consumer.subscribe({ topic: Topics.scheduled, fromBeginning: true });
    await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, eachBatch: (payload) => this.eachBatch(payload) });
  }

  private async eachBatch({ batch, resolveOffset, isRunning, isStale, heartbeat }: EachBatchPayload): Promise<void> {
    const { partition } = batch;
    if (!isRunning() || isStale()) return;
    const now = this.now();
    const dead: Array<Promise<void>> = [];
    for (const m of batch.messages) {
      const offset = Number(m.offset);
      const scanned = this.scanned.get(partition);
      if (scanned !== undefined && offset < scanned) {
        // A re-read (a seek for bodies, or a redelivery): only bodies of waiting entries matter.
        if (!isMarker(m) && m.value && m.key) this.book.fillBody(m.key.toString(), partition, offset, Buffer.from(m.value), now);
        continue;
      }
      this.scanned.set(partition, offset + 1);
      if (isMarker(m)) {
        for (const id of markerIds(m)) this.book.dropReleased(id);
        continue;
      }
      const problem = this.index(partition, offset, m, now);
      if (problem) dead.push(this.deadLetter(partition, m, problem));
    }
    await Promise.all(dead);
    resolveOffset(batch.lastOffset());
    this.emit('size', this.book.size);
    await this.commit(partition);
    await heartbeat();
    this.wake();
  }

  /** Adds a scheduled request to the book; returns why it cannot be, if so. */
  private index(partition: number, offset: number, m: KafkaMessage, now: number): ValidationError | undefined {
    let record;
    try {
      record = EmailRequestedContract.decode(m.value);
    } catch (err) {
      if (err instanceof ValidationError) return err;
      throw err;
    }
    const cancelled = this.deps.cancellations.get(record.messageId);
    if (cancelled && cancelled.tenant === record.tenant) return undefined;
    const sendAt = record.sendAt ? Date.parse(record.sendAt) : now;
    this.book.add({ id: record.messageId, tenant: record.tenant, priority: record.priority, sendAt, partition, offset, body: Buffer.from(m.value!) }, now);
    return undefined;
  }

  private async deadLetter(partition: number, message: KafkaMessage, err: ValidationError): Promise<void> {
    this.emit('invalid');
    await this.deps.events.deadLetter({ topic: Topics.scheduled, partition, message }, err.code, err.message);
  }

  /**
   * Arms the timer for the earliest entry, at most a quarter horizon ahead (so bodies are
   * re-read in time); one release round at a time.
   */
  private wake(): void {
    if (this.stopped || this.running) return;
    clearTimeout(this.timer);
    const next = this.book.nextDue();
    if (next === undefined) return;
    let wait = Math.min(Math.max(0, next - this.now()), this.deps.horizonMs / 4);
    // Due but its body is still being re-read: look again shortly, not in a busy loop.
    if (!this.progressed) wait = Math.max(wait, 20);
    this.timer = setTimeout(() => {
      this.running = this.releaseDue()
        .then((progressed) => void (this.progressed = progressed))
        .catch((err: unknown) => {
          this.progressed = false;
          this.deps.logger.warn({ err, topic: Topics.scheduled }, 'release round failed; retrying');
        })
        .finally(() => {
          this.running = undefined;
          this.wake();
        });
    }, wait);
  }

  private progressed = true;
  /** Markers, cancelled events and commits of past rounds, written in order behind the releases. */
  private bookkeeping: Promise<void> = Promise.resolve();
  /** Per partition: the offset a re-read was asked from, and when (one seek at a time). */
  private readonly seeks = new Map<number, { offset: number; at: number }>();

  /** Releases every due entry with its body; asks for the bodies of those coming due. True when it released something. */
  private async releaseDue(): Promise<boolean> {
    const now = this.now();
    const { ready, reread } = this.book.takeDue(now);
    for (const [partition, offset] of reread) {
      const last = this.seeks.get(partition);
      if (last && last.offset <= offset && now - last.at < 2000) continue;
      this.seeks.set(partition, { offset, at: now });
      this.deps.logger.debug({ topic: Topics.scheduled, partition, offset }, 're-reading bodies coming due');
      this.deps.consumer.seek({ topic: Topics.scheduled, partition, offset: String(offset) });
    }
    if (ready.length === 0) return reread.size === 0;
    const cancelled = ready.filter((e) => this.deps.cancellations.get(e.id)?.tenant === e.tenant);
    const toSend = ready.filter((e) => !cancelled.includes(e));
    const sent = await Promise.allSettled(toSend.map((e) => this.send(e)));
    const failed = toSend.filter((_, i) => sent[i].status === 'rejected');
    if (failed.length > 0) {
      this.book.putBack(failed);
      this.deps.logger.warn({ err: (sent.find((s) => s.status === 'rejected') as PromiseRejectedResult).reason, count: failed.length }, 'release not acknowledged; will retry');
    }
    const done = toSend.filter((_, i) => sent[i].status === 'fulfilled');
    const at = this.now();
    this.book.released([...done, ...cancelled]);
    if (done.length > 0) this.emit('released', done.map((e) => at - e.sendAt));
    this.emit('size', this.book.size);
    for (const e of done) this.deps.logger.debug({ messageId: e.id, tenant: e.tenant, latenessMs: at - e.sendAt }, 'released');
    // Markers and commits in the background, in order: the next round does not wait for them.
    const partitions = new Set(ready.map((e) => e.partition));
    this.bookkeeping = this.bookkeeping.then(async () => {
      // The requests are out: a missing marker matters only to a restart (which then sends them again).
      await this.mark(done).catch((err: unknown) => this.deps.logger.warn({ err, topic: Topics.scheduled, count: done.length }, 'released marker not written'));
      await Promise.all(cancelled.map((e) => this.publishCancelled(e)));
      for (const p of partitions) await this.commit(p);
    }).catch((err: unknown) => this.deps.logger.warn({ err, topic: Topics.scheduled }, 'release bookkeeping failed; the next round retries the commit'));
    return failed.length === 0;
  }

  private async send(e: ScheduledEntry): Promise<void> {
    const headers: IHeaders = { [RELEASED_HEADER]: '1' };
    try {
      await this.deps.producer.send(Topics.requestedFor(e.priority), { key: e.id, value: e.body!, headers });
    } catch (err) {
      if (!(err instanceof PermanentError)) throw err;
      await this.deps.events.deadLetter(
        { topic: Topics.scheduled, partition: e.partition, message: { key: Buffer.from(e.id), value: e.body!, offset: String(e.offset), headers: {} } as unknown as KafkaMessage },
        err.code,
        err.message,
        { messageId: e.id, tenant: e.tenant },
      );
    }
  }

  /** One `released` marker per partition, listing the ids released in this round. */
  private async mark(done: ScheduledEntry[]): Promise<void> {
    const byPartition = new Map<number, string[]>();
    for (const e of done) byPartition.set(e.partition, [...(byPartition.get(e.partition) ?? []), e.id]);
    await Promise.all(
      [...byPartition].map(([partition, ids]) =>
        this.deps.producer.send(Topics.scheduled, { partition, key: null, value: Buffer.from(JSON.stringify({ released: ids })), headers: { [MARKER_HEADER]: 'released' } }),
      ),
    );
  }

  /**
   * `DELETE /v1/emails/:id` on this replica: decided here, between release rounds, so a message
   * is either cancelled (never released) or too late (released), never both. `record` makes
   * the cancellation durable (email.cancellations) before the answer.
   */
  async cancel(id: string, tenant: string, record: () => Promise<void>): Promise<CancelOutcome> {
    const outcome = this.book.cancel(id, tenant);
    if (outcome.kind !== 'cancelled') return outcome;
    try {
      await record();
    } catch (err) {
      this.book.restore(outcome.entry);
      throw err;
    }
    await this.publishCancelled(outcome.entry);
    await this.commit(outcome.entry.partition);
    this.emit('size', this.book.size);
    return outcome;
  }

  /** A cancellation recorded elsewhere (another replica, or ingest's fallback) for an entry held here. */
  applyCancellation(c: Cancellation): void {
    const outcome = this.book.cancel(c.messageId, c.tenant);
    if (outcome.kind === 'cancelled') {
      void this.publishCancelled(outcome.entry).catch((err: unknown) => this.deps.logger.warn({ err, messageId: c.messageId }, 'could not publish the cancelled event'));
      this.emit('size', this.book.size);
    }
  }

  private async publishCancelled(e: ScheduledEntry): Promise<void> {
    await this.deps.events.publish({ type: 'cancelled', messageId: e.id, tenant: e.tenant, priority: e.priority, reason: 'scheduled send cancelled' });
    this.emit('cancelled', 1);
    this.deps.logger.info({ messageId: e.id, tenant: e.tenant }, 'scheduled message cancelled');
  }

  /**
   * Commits a partition's oldest waiting offset. At most once a second per partition unless
   * forced: finding that offset walks the book, and a later commit only saves re-reading on restart.
   */
  private async commit(partition: number, force = false): Promise<void> {
    const scanned = this.scanned.get(partition);
    if (scanned === undefined) return;
    const now = Date.now();
    if (!force && now - (this.commitAt.get(partition) ?? 0) < 1000) return;
    this.commitAt.set(partition, now);
    const offset = this.book.commitOffset(partition, scanned);
    if (this.committed.get(partition) === offset) return;
    await this.deps.consumer.commitOffsets([{ topic: Topics.scheduled, partition, offset: String(offset) }]);
    this.committed.set(partition, offset);
    this.emit('committed', Topics.scheduled, partition, String(offset));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    await this.bookkeeping;
    for (const p of this.scanned.keys()) await this.commit(p, true).catch((err: unknown) => this.deps.logger.warn({ err, topic: Topics.scheduled, partition: p }, 'final commit failed'));
    await this.deps.consumer.stop();
  }
}

function isMarker(m: KafkaMessage): boolean {
  return m.headers?.[MARKER_HEADER] !== undefined;
}

function markerIds(m: KafkaMessage): string[] {
  try {
    const v = JSON.parse(m.value?.toString() ?? '{}') as { released?: unknown };
    return Array.isArray(v.released) ? v.released.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}
