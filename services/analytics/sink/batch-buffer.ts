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
