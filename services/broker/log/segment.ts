/**
 * One log segment: `<base>.log` holding whole record batches back to back, a sparse offset
 * index `<base>.index` (relative offset, position) and a time index `<base>.timeindex`
 * (max timestamp so far, relative offset), the same layout Kafka uses. The indexes live in
 * memory and are appended to their files; on start-up the active segment's are rebuilt from
 * the log itself, which is the only source of truth.
 */
import fs from 'node:fs';
import path from 'node:path';
import { LOG_OVERHEAD, BATCH_HEADER_SIZE, batchCrcValid, readBatchInfo, type BatchInfo } from './record-batch.js';

const SCAN_CHUNK = 1 << 20;

export function segmentName(baseOffset: number): string {
  return String(baseOffset).padStart(20, '0');
}

export interface SegmentFiles {
  log: string;
  index: string;
  timeIndex: string;
}

export function segmentFiles(dir: string, baseOffset: number): SegmentFiles {
  const name = path.join(dir, segmentName(baseOffset));
  return { log: `${name}.log`, index: `${name}.index`, timeIndex: `${name}.timeindex` };
}

export class Segment {
  readonly files: SegmentFiles;
  fd: number;
  private indexFd: number;
  private timeIndexFd: number;
  /** Bytes of whole batches in the log file. */
  size = 0;
  /** Offset after the last record in this segment. */
  nextOffset: number;
  maxTimestamp = -1;
  /** Wall-clock time of the first append (for roll by age). */
  createdAt = Date.now();
  private indexRel: number[] = [];
  private indexPos: number[] = [];
  private timeTs: number[] = [];
  private timeRel: number[] = [];
  private bytesSinceIndex = 0;
  private closed = false;

  private constructor(
    readonly dir: string,
    readonly baseOffset: number,
    private readonly indexIntervalBytes: number,
  ) {
    this.files = segmentFiles(dir, baseOffset);
    this.nextOffset = baseOffset;
    this.fd = fs.openSync(this.files.log, 'a+');
    this.indexFd = fs.openSync(this.files.index, 'a+');
    this.timeIndexFd = fs.openSync(this.files.timeIndex, 'a+');
  }

  static create(dir: string, baseOffset: number, indexIntervalBytes: number): Segment {
    for (const f of Object.values(segmentFiles(dir, baseOffset))) fs.rmSync(f, { force: true });
    return new Segment(dir, baseOffset, indexIntervalBytes);
  }

  /**
   * Opens an existing segment. A closed segment trusts its index files when they are
   * consistent with the log; `recover` rescans the log, verifies CRCs, truncates a torn tail
   * and rebuilds both indexes (the active segment after a crash).
   */
  static open(dir: string, baseOffset: number, indexIntervalBytes: number, recover: boolean): Segment {
    const seg = new Segment(dir, baseOffset, indexIntervalBytes);
    seg.size = fs.fstatSync(seg.fd).size;
    // Indexes that do not match the log (or a log with a torn tail, which only a crash leaves)
    // mean the segment was not closed cleanly: rebuild and verify it like the active one.
    if (recover || !seg.loadIndexes()) seg.rebuild(true);
    return seg;
  }

  /**
   * Loads index files; false when they are missing, torn or do not match the log: entries
   * must increase, lie inside the log, the last must point at the batch it names, and the
   * batches after it must end exactly at the end of the file.
   */
  private loadIndexes(): boolean {
    const idx = fs.readFileSync(this.files.index);
    const tix = fs.readFileSync(this.files.timeIndex);
    if (idx.length % 8 !== 0 || tix.length % 12 !== 0) return false;
    if (this.size > 0 && (idx.length === 0 || tix.length === 0)) return false;
    for (let i = 0; i < idx.length; i += 8) {
      const rel = idx.readInt32BE(i);
      const pos = idx.readInt32BE(i + 4);
      if (pos >= this.size || (i > 0 && (rel <= (this.indexRel.at(-1) as number) || pos <= (this.indexPos.at(-1) as number)))) return false;
      this.indexRel.push(rel);
      this.indexPos.push(pos);
    }
    for (let i = 0; i < tix.length; i += 12) {
      this.timeTs.push(Number(tix.readBigInt64BE(i)));
      this.timeRel.push(tix.readInt32BE(i + 8));
    }
    const lastPos = this.indexPos.at(-1) ?? 0;
    const lastBase = this.baseOffset + (this.indexRel.at(-1) ?? 0);
    // The end offset and max timestamp come from the batches after the last index entry.
    let aligned = true;
    const end = this.scan(lastPos, (info) => {
      if (info.position === lastPos && info.baseOffset !== lastBase) {
        aligned = false;
        return false;
      }
      this.nextOffset = info.baseOffset + info.lastOffsetDelta + 1;
    });
    if (!aligned || end !== this.size) return false;
    this.maxTimestamp = this.timeTs.at(-1) ?? -1;
    this.scan(this.positionFor(this.timeRel.length ? this.baseOffset + (this.timeRel.at(-1) as number) : this.baseOffset), (info) => {
      if (info.maxTimestamp > this.maxTimestamp) this.maxTimestamp = info.maxTimestamp;
    });
    return true;
  }

  private rebuild(verifyCrc: boolean): void {
    this.indexRel = [];
    this.indexPos = [];
    this.timeTs = [];
    this.timeRel = [];
    this.bytesSinceIndex = 0;
    this.maxTimestamp = -1;
    this.nextOffset = this.baseOffset;
    fs.ftruncateSync(this.indexFd, 0);
    fs.ftruncateSync(this.timeIndexFd, 0);
    let expectedOffset = this.baseOffset;
    const end = this.scan(0, (info, buf, at) => {
      if (info.baseOffset < expectedOffset) return false;
      if (verifyCrc && !batchCrcValid(buf, at, info.size)) return false;
      this.track(info, info.position);
      expectedOffset = this.nextOffset;
    });
    if (end < this.size) {
      // A torn or corrupt tail (crash mid-write): drop it, everything before it is whole.
      fs.ftruncateSync(this.fd, end);
      this.size = end;
    }
  }

  /**
   * Reads batches from `from` to the end of the log in large chunks. The callback may return
   * false to stop; the return value is the position after the last whole batch accepted.
   */
  scan(from: number, onBatch: (info: BatchInfo, chunk: Buffer, at: number) => boolean | void, chunkSize = SCAN_CHUNK): number {
    if (this.closed) return from;
    let pos = from;
    let chunk: Buffer = Buffer.alloc(0);
    let chunkStart = pos;
    while (pos + BATCH_HEADER_SIZE <= this.size) {
      let at = pos - chunkStart;
      if (at + BATCH_HEADER_SIZE > chunk.length) {
        chunk = this.read(pos, Math.min(chunkSize, this.size - pos));
        chunkStart = pos;
        at = 0;
      }
      const size = LOG_OVERHEAD + chunk.readInt32BE(at + 8);
      if (size < BATCH_HEADER_SIZE || pos + size > this.size) break;
      if (at + size > chunk.length) {
        chunk = this.read(pos, Math.max(size, Math.min(chunkSize, this.size - pos)));
        chunkStart = pos;
        at = 0;
      }
      const info = readBatchInfo(chunk, at);
      info.position = pos;
      if (onBatch(info, chunk, at) === false) break;
      pos += size;
    }
    return pos;
  }

  read(position: number, length: number): Buffer {
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const n = fs.readSync(this.fd, buf, done, length - done, position + done);
      if (n === 0) break;
      done += n;
    }
    return done === length ? buf : buf.subarray(0, done);
  }

  /** Updates in-memory state and indexes for a batch stored at `position`. */
  private track(info: BatchInfo, position: number): void {
    const lastOffset = info.baseOffset + info.lastOffsetDelta;
    if (this.indexRel.length === 0 || this.bytesSinceIndex >= this.indexIntervalBytes) {
      const rel = info.baseOffset - this.baseOffset;
      this.indexRel.push(rel);
      this.indexPos.push(position);
      const e = Buffer.allocUnsafe(8);
      e.writeInt32BE(rel, 0);
      e.writeInt32BE(position, 4);
      fs.writeSync(this.indexFd, e);
      if (info.maxTimestamp > this.maxTimestamp) {
        this.timeTs.push(info.maxTimestamp);
        this.timeRel.push(lastOffset - this.baseOffset);
        const t = Buffer.allocUnsafe(12);
        t.writeBigInt64BE(BigInt(info.maxTimestamp), 0);
        t.writeInt32BE(lastOffset - this.baseOffset, 8);
        fs.writeSync(this.timeIndexFd, t);
      }
      this.bytesSinceIndex = 0;
    }
    this.bytesSinceIndex += info.size;
    if (info.maxTimestamp > this.maxTimestamp) this.maxTimestamp = info.maxTimestamp;
    this.nextOffset = lastOffset + 1;
  }

  /** Appends whole batches whose base offsets are already assigned. */
  append(buf: Buffer, batches: BatchInfo[]): void {
    let position = this.size;
    fs.writeSync(this.fd, buf, 0, buf.length, this.size);
    for (const b of batches) {
      this.track(b, position);
      position += b.size;
    }
    this.size += buf.length;
  }

  /** File position of the batch that contains `offset`, or where scanning for it should start. */
  positionFor(offset: number): number {
    const rel = offset - this.baseOffset;
    let lo = 0;
    let hi = this.indexRel.length - 1;
    let best = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.indexRel[mid] <= rel) {
        best = this.indexPos[mid];
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return best;
  }

  /** Offset from which to scan for the first record with timestamp >= ts. */
  offsetBeforeTimestamp(ts: number): number {
    let from = this.baseOffset;
    for (let i = 0; i < this.timeTs.length && this.timeTs[i] < ts; i++) from = this.baseOffset + this.timeRel[i] + 1;
    return from;
  }

  async sync(): Promise<void> {
    // A segment closed meanwhile (deleted by retention, replaced by compaction, topic deleted)
    // has nothing left to make durable; its fd may already belong to another file.
    if (this.closed) return;
    await new Promise<void>((resolve, reject) => fs.fdatasync(this.fd, (err) => (err ? reject(err) : resolve())));
  }

  syncIndexesSync(): void {
    fs.fsyncSync(this.indexFd);
    fs.fsyncSync(this.timeIndexFd);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const fd of [this.fd, this.indexFd, this.timeIndexFd]) {
      try {
        fs.closeSync(fd);
      } catch {
        // already closed
      }
    }
  }

  delete(): void {
    this.close();
    for (const f of Object.values(this.files)) fs.rmSync(f, { force: true });
  }
}
