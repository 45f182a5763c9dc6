/**
 * One partition's log: an ordered list of segments, the offsets that bound it, and the
 * idempotent-producer state. Appends are synchronous writes to the page cache; durability
 * comes from `flush()`, which the group-commit loop calls, and the high watermark (what
 * consumers may read) only moves past data that has been fsynced. So a consumer never acts on
 * a record that a crash could still take back.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CorruptBatchError, UnsupportedCodecError, readRecords, setBaseOffset, validateBatches, type BatchInfo } from './record-batch.js';
import { ProducerState } from './producer-state.js';
import { Segment, segmentName } from './segment.js';
import { syncDir } from './sync-dir.js';
import type { TopicConfig } from './topic-config.js';

export type Durability = 'group' | 'none';

/** A produce that the log refuses, carrying the Kafka error name for the response. */
export class AppendError extends Error {
  constructor(
    readonly errorName: 'CORRUPT_MESSAGE' | 'INVALID_RECORD' | 'MESSAGE_TOO_LARGE' | 'OUT_OF_ORDER_SEQUENCE_NUMBER' | 'INVALID_PRODUCER_EPOCH',
    message: string,
  ) {
    super(message);
    this.name = 'AppendError';
  }
}

export interface ReadResult {
  error?: 'OFFSET_OUT_OF_RANGE';
  records: Buffer[];
  bytes: number;
}

const SNAPSHOT = /^(\d{20})\.snapshot$/;
const LOG_FILE = /^(\d{20})\.log$/;
/** Where DeleteRecords keeps the log start offset it set (survives restarts, like Kafka's checkpoint). */
const LOG_START_FILE = 'log-start-offset';

/** High-watermark moves remembered per partition (`readableSince`). */
const ADVANCES_KEPT = 32;

export class PartitionLog {
  segments: Segment[] = [];
  logStartOffset = 0;
  highWatermark = 0;
  /** Set by compaction; only segments wholly below it are clean. */
  cleanedUpTo = 0;
  lastCleanedAt = 0;
  private producers = new ProducerState();
  private unsynced = new Set<Segment>();
  private hwListeners = new Set<(closed: boolean) => void>();
  private appendedBytes = 0;
  private exposed = 0;
  /** The last ADVANCES_KEPT high-watermark moves: the high watermark after each, and when. */
  private advances: Array<{ hw: number; at: number }> = [];
  /** The high watermark before the oldest remembered move. */
  private advancesFrom = 0;

  private constructor(
    readonly topic: string,
    readonly partition: number,
    readonly dir: string,
    private config: TopicConfig,
    private readonly durability: Durability,
  ) {}

  /** Opens (or creates) the partition in `dir`. `unclean` verifies and repairs the active segment. */
  static open(topic: string, partition: number, dir: string, config: TopicConfig, durability: Durability, unclean: boolean): PartitionLog {
    fs.mkdirSync(dir, { recursive: true });
    const log = new PartitionLog(topic, partition, dir, config, durability);
    const names = fs.readdirSync(dir);
    for (const n of names) if (n.endsWith('.cleaned') || n.endsWith('.tmp')) fs.rmSync(path.join(dir, n), { force: true });
    const bases = names.map((n) => LOG_FILE.exec(n)).filter((m) => m !== null).map((m) => Number(m[1])).sort((a, b) => a - b);
    const fresh = bases.length === 0;
    if (fresh) bases.push(0);
    bases.forEach((base, i) => {
      const active = i === bases.length - 1;
      log.segments.push(Segment.open(dir, base, config.indexIntervalBytes, active && unclean));
    });
    if (fresh) syncDir(dir);
    log.logStartOffset = Math.min(Math.max(log.segments[0].baseOffset, log.readLogStart()), log.logEndOffset);
    log.highWatermark = log.logEndOffset;
    log.cleanedUpTo = log.logStartOffset;
    log.loadProducerState();
    return log;
  }

  get active(): Segment {
    return this.segments[this.segments.length - 1];
  }

  get logEndOffset(): number {
    return this.active.nextOffset;
  }

  get sizeBytes(): number {
    return this.segments.reduce((n, s) => n + s.size, 0);
  }

  setConfig(config: TopicConfig): void {
    this.config = config;
  }

  /**
   * Bytes appended since the log was opened that are below the high watermark. It only grows
   * (compaction and deletion do not lower it), so the difference between two readings is how
   * much a waiting fetch could newly read, without reading it (fetch's `minBytes`).
   */
  get exposedBytes(): number {
    return this.exposed;
  }

  /**
   * When the record at `offset` became readable, as far as the last ADVANCES_KEPT moves of the
   * high watermark tell: -Infinity when before them, Infinity when not yet.
   */
  readableSince(offset: number): number {
    if (offset < this.advancesFrom) return -Infinity;
    for (const a of this.advances) if (a.hw > offset) return a.at;
    return offset < this.highWatermark ? -Infinity : Infinity;
  }

  /** Calls `fn` whenever the high watermark moves, and with `true` when the log closes (fetch long-polls wait on this). */
  onHighWatermark(fn: (closed: boolean) => void): () => void {
    this.hwListeners.add(fn);
    return () => this.hwListeners.delete(fn);
  }

  private loadProducerState(): void {
    const snapshots = fs
      .readdirSync(this.dir)
      .map((n) => SNAPSHOT.exec(n))
      .filter((m) => m !== null)
      .map((m) => Number(m[1]))
      .filter((o) => o <= this.logEndOffset)
      .sort((a, b) => a - b);
    // The newest readable snapshot bounds the replay; a torn one (crash while writing it) is
    // skipped in favour of an older one, or of replaying the whole log.
    let from: number | undefined;
    this.producers = new ProducerState();
    for (const offset of snapshots.reverse()) {
      const state = ProducerState.readSnapshot(this.snapshotFile(offset));
      if (state) {
        this.producers = state;
        from = offset;
        break;
      }
    }
    const start = from ?? this.logStartOffset;
    for (const seg of this.segments) {
      if (seg.nextOffset <= start) continue;
      seg.scan(seg.positionFor(start), (info) => {
        if (info.baseOffset >= start) this.producers.record(info, info.baseOffset);
      });
    }
  }

  /** The log start offset DeleteRecords moved (0 when it never did). */
  private readLogStart(): number {
    try {
      const n = Number(fs.readFileSync(path.join(this.dir, LOG_START_FILE), 'utf8'));
      return Number.isSafeInteger(n) && n >= 0 ? n : 0;
    } catch {
      return 0;
    }
  }

  /**
   * DeleteRecords: moves the log start offset up to `offset` (at most the high watermark),
   * durably, and drops the segments wholly below it. Reads below it are then out of range.
   * Returns the new log start offset.
   */
  deleteRecordsBefore(offset: number): number {
    if (offset < 0 || offset > this.highWatermark) throw new RangeError(`offset ${offset} is outside 0..${this.highWatermark}`);
    if (offset <= this.logStartOffset) return this.logStartOffset;
    const file = path.join(this.dir, LOG_START_FILE);
    const fd = fs.openSync(`${file}.tmp`, 'w');
    try {
      fs.writeSync(fd, String(offset));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(`${file}.tmp`, file);
    syncDir(this.dir);
    this.logStartOffset = offset;
    // A whole active segment below the new start is closed first so it can go too.
    if (this.active.nextOffset <= offset && this.active.size > 0) this.roll();
    while (this.segments.length > 1 && this.segments[0].nextOffset <= offset) {
      const gone = this.segments.shift() as Segment;
      this.unsynced.delete(gone);
      gone.delete();
    }
    this.deleteSnapshotsBefore(this.segments[0].baseOffset);
    return offset;
  }

  private snapshotFile(offset: number): string {
    return path.join(this.dir, `${segmentName(offset)}.snapshot`);
  }

  /**
   * Validates and appends a produced record set; returns the base offset of its first batch.
   * A retried idempotent batch returns the offset it was first stored at and writes nothing.
   */
  append(records: Buffer, now = Date.now()): { baseOffset: number; duplicate: boolean } {
    let batches: BatchInfo[];
    try {
      batches = validateBatches(records);
    } catch (err) {
      if (!(err instanceof CorruptBatchError)) throw err;
      throw new AppendError(err.code, err.message);
    }
    if (batches.length === 0) throw new AppendError('CORRUPT_MESSAGE', 'empty record set');
    for (const b of batches) {
      if (b.size > this.config.maxMessageBytes) {
        throw new AppendError('MESSAGE_TOO_LARGE', `batch of ${b.size} bytes exceeds max.message.bytes ${this.config.maxMessageBytes}`);
      }
    }
    // Producers send one batch per partition; a set mixing a duplicate and new batches is
    // judged by its first batch, as Kafka does.
    const verdict = this.producers.check(batches[0]);
    if (verdict.kind === 'duplicate') return { baseOffset: verdict.baseOffset, duplicate: true };
    if (verdict.kind === 'error') throw new AppendError(verdict.error, `producer ${batches[0].producerId}: ${verdict.error}`);

    this.maybeRoll(records.length, now);
    const baseOffset = this.logEndOffset;
    let next = baseOffset;
    for (const b of batches) {
      setBaseOffset(records, b.position, next);
      b.baseOffset = next;
      next += b.lastOffsetDelta + 1;
    }
    this.active.append(records, batches);
    this.appendedBytes += records.length;
    for (const b of batches) this.producers.record(b, b.baseOffset, now);
    this.unsynced.add(this.active);
    if (this.durability === 'none') this.advanceHighWatermark(this.logEndOffset, this.appendedBytes);
    return { baseOffset, duplicate: false };
  }

  private maybeRoll(incoming: number, now: number): void {
    const seg = this.active;
    if (seg.size === 0) return;
    if (seg.size + incoming <= this.config.segmentBytes && now - seg.createdAt < this.config.segmentMs) return;
    this.roll();
  }

  /** Closes the active segment and starts a new one at the log end offset. */
  roll(): void {
    const old = this.active;
    if (old.size === 0) return;
    old.syncIndexesSync();
    this.producers.writeSnapshot(this.snapshotFile(old.nextOffset));
    this.pruneSnapshots();
    this.segments.push(Segment.create(this.dir, old.nextOffset, this.config.indexIntervalBytes));
    // fdatasync of the new log file does not persist its directory entry; without this a power
    // cut could lose a whole acknowledged segment.
    syncDir(this.dir);
  }

  /** Makes everything appended so far durable, then exposes it to consumers. */
  async flush(): Promise<void> {
    if (this.unsynced.size === 0) return;
    const end = this.logEndOffset;
    const bytes = this.appendedBytes;
    const segments = [...this.unsynced];
    this.unsynced.clear();
    await Promise.all(segments.map((s) => s.sync()));
    this.advanceHighWatermark(end, bytes);
  }

  get needsFlush(): boolean {
    return this.unsynced.size > 0;
  }

  private advanceHighWatermark(offset: number, appendedBytes: number): void {
    if (offset <= this.highWatermark) return;
    if (this.advances.length === 0) this.advancesFrom = this.highWatermark;
    this.highWatermark = offset;
    this.exposed = appendedBytes;
    this.advances.push({ hw: offset, at: Date.now() });
    if (this.advances.length > ADVANCES_KEPT) this.advancesFrom = (this.advances.shift() as { hw: number }).hw;
    for (const fn of [...this.hwListeners]) fn(false);
  }

  private segmentFor(offset: number): number {
    let lo = 0;
    let hi = this.segments.length - 1;
    let best = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.segments[mid].baseOffset <= offset) {
        best = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return best;
  }

  /**
   * Whole batches starting with the one holding `offset`, up to `maxBytes` (the first batch is
   * returned even when larger, so a consumer always makes progress), never past the high watermark.
   */
  read(offset: number, maxBytes: number): ReadResult {
    if (offset < this.logStartOffset || offset > this.logEndOffset) return { error: 'OFFSET_OUT_OF_RANGE', records: [], bytes: 0 };
    const records: Buffer[] = [];
    let bytes = 0;
    const limit = this.highWatermark;
    for (let i = this.segmentFor(offset); i < this.segments.length && offset < limit && records.length === 0; i++) {
      const seg = this.segments[i];
      seg.scan(
        seg.positionFor(offset),
        (info, chunk, at) => {
          if (info.baseOffset >= limit) return false;
          if (info.baseOffset + info.lastOffsetDelta < offset) return;
          if (bytes > 0 && bytes + info.size > maxBytes) return false;
          records.push(chunk.subarray(at, at + info.size));
          bytes += info.size;
        },
        Math.max(maxBytes, 16 * 1024),
      );
    }
    return { records, bytes };
  }

  /** The first offset whose record timestamp is >= ts, or null when there is none. */
  offsetForTimestamp(ts: number): { offset: number; timestamp: number } | null {
    for (const seg of this.segments) {
      if (seg.maxTimestamp < ts) continue;
      const from = Math.max(seg.offsetBeforeTimestamp(ts), this.logStartOffset);
      let found: { offset: number; timestamp: number } | null = null;
      seg.scan(seg.positionFor(from), (info, chunk, at) => {
        if (info.baseOffset >= this.highWatermark) return false;
        if (info.maxTimestamp < ts || info.baseOffset + info.lastOffsetDelta < from) return;
        try {
          const hit = readRecords(chunk, info, at).find((r) => r.timestamp >= ts && r.offset >= from);
          if (hit) found = { offset: hit.offset, timestamp: hit.timestamp };
        } catch (err) {
          if (!(err instanceof UnsupportedCodecError || err instanceof CorruptBatchError)) throw err;
          found = { offset: info.baseOffset, timestamp: info.maxTimestamp };
        }
        return found ? false : undefined;
      });
      if (found) return found;
    }
    return null;
  }

  /** Deletes whole closed segments past `retention.ms` or beyond `retention.bytes`. */
  enforceRetention(now = Date.now()): number {
    if (!this.config.cleanupPolicy.includes('delete')) return 0;
    let deleted = 0;
    let total = this.sizeBytes;
    while (this.segments.length > 1) {
      const oldest = this.segments[0];
      const age = now - (oldest.maxTimestamp >= 0 ? oldest.maxTimestamp : oldest.createdAt);
      const byTime = this.config.retentionMs >= 0 && age > this.config.retentionMs;
      const bySize = this.config.retentionBytes >= 0 && total - oldest.size >= this.config.retentionBytes;
      if (!byTime && !bySize) break;
      this.segments.shift();
      this.unsynced.delete(oldest);
      oldest.delete();
      total -= oldest.size;
      deleted++;
    }
    if (deleted > 0) {
      this.logStartOffset = Math.max(this.logStartOffset, this.segments[0].baseOffset);
      this.deleteSnapshotsBefore(this.logStartOffset);
    }
    return deleted;
  }

  /** Keeps the newest few producer snapshots (older ones are only fallbacks for a torn newest). */
  private pruneSnapshots(keep = 3): void {
    const offsets = fs
      .readdirSync(this.dir)
      .map((n) => SNAPSHOT.exec(n))
      .filter((m) => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => b - a);
    for (const o of offsets.slice(keep)) fs.rmSync(this.snapshotFile(o), { force: true });
  }

  private deleteSnapshotsBefore(offset: number): void {
    for (const n of fs.readdirSync(this.dir)) {
      const m = SNAPSHOT.exec(n);
      if (m && Number(m[1]) < offset) fs.rmSync(path.join(this.dir, n), { force: true });
    }
  }

  /** Swaps a closed segment for rewritten content (compaction). Crash-safe: rename is atomic. */
  replaceSegment(seg: Segment, batches: Buffer[]): void {
    const i = this.segments.indexOf(seg);
    if (i < 0 || seg === this.active) throw new Error('only closed segments can be replaced');
    const tmp = `${seg.files.log}.cleaned`;
    const fd = fs.openSync(tmp, 'w');
    for (const b of batches) fs.writeSync(fd, b);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    seg.close();
    fs.rmSync(seg.files.index, { force: true });
    fs.rmSync(seg.files.timeIndex, { force: true });
    fs.renameSync(tmp, seg.files.log);
    syncDir(this.dir);
    this.unsynced.delete(seg);
    const fresh = Segment.open(this.dir, seg.baseOffset, this.config.indexIntervalBytes, false);
    fresh.syncIndexesSync();
    this.segments[i] = fresh;
  }

  get topicConfig(): TopicConfig {
    return this.config;
  }

  close(): void {
    this.unsynced.clear();
    for (const s of this.segments) s.close();
    // Wake long-polls waiting on this log (a deleted topic): they look it up again and stop.
    for (const fn of [...this.hwListeners]) fn(true);
  }

  /** Closes files and removes the partition directory. */
  destroy(): void {
    this.close();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
