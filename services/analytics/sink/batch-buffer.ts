/**
 * Rows waiting for the next ClickHouse insert, with the offsets that may be committed once
 * that insert returned. Pure bookkeeping; the sink decides when to take a batch.
 */
import { createHash } from 'node:crypto';
import type { EventRow, RecordCoordinates } from './event-row.js';

/** What one insert carries and what its success allows to commit. */
export interface Batch {
  rows: EventRow[];
  /** Next offset to read per topic-partition (Kafka commits "the next one"), for every record handled. */
  commits: Array<{ topic: string; partition: number; offset: string }>;
  /**
   * Deduplication token: a digest of exactly which records the rows came from. A retry of this
   * batch carries the same token (ClickHouse drops what an earlier attempt stored); a batch
   * with other rows never does, even over the same offset range.
   */
  token: string;
  /** When the first record entered the buffer (ms, monotonic clock). */
  openedAt: number;
}

const tpKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

export class BatchBuffer {
  private rows: EventRow[] = [];
  private marks = new Map<string, { topic: string; partition: number; offset: bigint }>();
  private openedAt: number | null = null;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Adds the row of a record. */
  add(row: EventRow, at: RecordCoordinates): void {
    this.rows.push(row);
    this.mark(at);
  }

  /** Records a record handled without a row (dead-lettered, or already stored): committable with the next batch. */
  mark(at: RecordCoordinates): void {
    this.openedAt ??= this.now();
    const key = tpKey(at.topic, at.partition);
    const offset = BigInt(at.offset);
    const cur = this.marks.get(key);
    if (!cur || offset > cur.offset) this.marks.set(key, { topic: at.topic, partition: at.partition, offset });
  }

  get size(): number {
    return this.rows.length;
  }

  /** True when nothing was handled since the last take (no rows and nothing to commit). */
  get isEmpty(): boolean {
    return this.marks.size === 0;
  }

  /** Milliseconds since the first record of this batch arrived (0 when empty). */
  get ageMs(): number {
    return this.openedAt === null ? 0 : this.now() - this.openedAt;
  }

  /** Removes and returns everything buffered. */
  take(): Batch {
    const rows = this.rows;
    const commits = [...this.marks.values()].map((m) => ({ topic: m.topic, partition: m.partition, offset: String(m.offset + 1n) }));
    const batch: Batch = { rows, commits, token: batchToken(rows), openedAt: this.openedAt ?? this.now() };
    this.rows = [];
    this.marks = new Map();
    this.openedAt = null;
    return batch;
  }

  /** Forgets everything buffered (after a rebalance the records are fetched again from the committed offsets). */
  clear(): number {
    const n = this.rows.length;
    this.rows = [];
    this.marks = new Map();
    this.openedAt = null;
    return n;
  }
}

/** A digest of the (topic, partition, offset) of every row, in order. */
export function batchToken(rows: EventRow[]): string {
  const h = createHash('sha256');
  for (const r of rows) h.update(`${r.kafka_topic}\u0000${r.kafka_partition}\u0000${r.kafka_offset}\n`);
  return `postline-sink-${h.digest('hex').slice(0, 40)}`;
}

export interface BatchTiming {
  batchMaxRows: number;
  batchMaxWaitMs: number;
  /** A batch filling at this many rows a second or more may wait up to `batchBusyWaitMs`. */
  batchBusyRowsPerSecond: number;
  batchBusyWaitMs: number;
}

/**
 * When a batch of `rows` rows, the first of them `ageMs` old, is due for its insert: now
 * (`inMs` 0) or in `inMs` unless more rows come. Full at `batchMaxRows`; otherwise inserted
 * once `batchMaxWaitMs` old — unless it is filling fast (`batchBusyRowsPerSecond` or more over its
 * age so far): then it waits while it keeps up that rate, at most `batchBusyWaitMs`.
 *
 * Why: each insert costs the engine about the same up to thousands of rows (a part written to
 * the events table and to every rollup, ~137 ms of CPU on this project's 2-core VM with the
 * embedded engine). In one process at 2,700 events a second, the engine's CPU per row: inserts
 * every 1 s 96–98 µs, every 3 s 53–62, every 5 s 47–49 (two runs each). Under `npm start`'s
 * 20,000-message batch (peak PSS and CPU per message per process from /proc), 5 s against off,
 * two alternated pairs: analytics' CPU per message 0.31 / 0.40 → 0.20 / 0.23 ms, the install's
 * throughput 803 / 694 → 801 / 753 msgs/s (no gain), analytics' peak 468 / 488 → 570 / 540 MB;
 * 3 s, two more pairs: 0.26 / 0.25 → 0.20 / 0.26 ms, peak again 50–110 MB higher. Hence off by
 * default (services/analytics/README.md). A trickle still reaches the timeline within
 * `batchMaxWaitMs`; under load it trails by up to `batchBusyWaitMs`, and a burst's last rows
 * wait only until the batch's average rate falls below the threshold.
 */
export function batchDue(rows: number, ageMs: number, t: BatchTiming): { due: boolean; inMs: number } {
  if (rows >= t.batchMaxRows) return { due: true, inMs: 0 };
  if (ageMs < t.batchMaxWaitMs) return { due: false, inMs: t.batchMaxWaitMs - ageMs };
  const longest = Math.max(t.batchMaxWaitMs, t.batchBusyWaitMs);
  // The batch's average rate falls below the threshold at rows / rate seconds of age.
  const until = Math.min(longest, (rows * 1000) / t.batchBusyRowsPerSecond);
  return ageMs >= until ? { due: true, inMs: 0 } : { due: false, inMs: until - ageMs };
}
