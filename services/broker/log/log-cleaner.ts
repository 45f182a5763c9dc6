/**
 * Compaction for `cleanup.policy=compact`: keep the latest record of every key, drop older
 * ones, and drop tombstones (null values) once they are older than `delete.retention.ms`.
 * Only closed segments are rewritten, none holding records younger than `min.compaction.lag.ms`,
 * and the latest record of a key is never removed, so a reader starting at offset 0 always sees
 * the current value of every live key.
 */
import { CorruptBatchError, UnsupportedCodecError, readRecords, rebuildBatch, type RecordView } from './record-batch.js';
import type { PartitionLog } from './partition-log.js';

export interface CleanResult {
  segmentsRewritten: number;
  recordsRemoved: number;
}

function recordsOf(chunk: Buffer, info: Parameters<typeof readRecords>[1], at: number): RecordView[] | null {
  try {
    return readRecords(chunk, info, at);
  } catch (err) {
    // Batches the broker cannot decode (snappy/lz4/zstd) are kept whole: safe, never lossy.
    if (err instanceof UnsupportedCodecError || err instanceof CorruptBatchError) return null;
    throw err;
  }
}

/** True when the partition has closed segments written since the last pass, or tombstones may have expired. */
export function needsCleaning(log: PartitionLog, now = Date.now()): boolean {
  const cfg = log.topicConfig;
  if (!cfg.cleanupPolicy.includes('compact') || log.segments.length < 2) return false;
  return log.active.baseOffset > log.cleanedUpTo || now - log.lastCleanedAt > cfg.deleteRetentionMs;
}

export function cleanPartition(log: PartitionLog, now = Date.now()): CleanResult {
  const result: CleanResult = { segmentsRewritten: 0, recordsRemoved: 0 };
  // Only durable records (below the high watermark) count: a newer value that a crash could
  // still take back must not be the reason an older, durable one is dropped.
  const durableEnd = log.highWatermark;
  const latest = new Map<string, number>();
  for (const seg of log.segments) {
    if (seg.baseOffset >= durableEnd) break;
    seg.scan(0, (info, chunk, at) => {
      if (info.baseOffset >= durableEnd) return false;
      for (const r of recordsOf(chunk, info, at) ?? []) if (r.key && r.offset < durableEnd) latest.set(r.key.toString('latin1'), r.offset);
    });
  }
  // Closed, durable segments, oldest first, stopping at the first one holding records younger
  // than min.compaction.lag.ms (a consumer is promised to see every record that young).
  const closed = [];
  for (const seg of log.segments.slice(0, -1)) {
    if (seg.nextOffset > durableEnd || now - seg.maxTimestamp < log.topicConfig.minCompactionLagMs) break;
    closed.push(seg);
  }
  for (const seg of closed) {
    const tombstonesExpire = now - seg.maxTimestamp > log.topicConfig.deleteRetentionMs;
    const out: Buffer[] = [];
    let changed = false;
    seg.scan(0, (info, chunk, at) => {
      const records = recordsOf(chunk, info, at);
      const whole = chunk.subarray(at, at + info.size);
      if (!records) {
        out.push(whole);
        return;
      }
      const keep = records.filter((r) => {
        if (!r.key) return true;
        if (latest.get(r.key.toString('latin1')) !== r.offset) return false;
        return !(r.value === null && tombstonesExpire);
      });
      if (keep.length === records.length) {
        out.push(whole);
        return;
      }
      changed = true;
      result.recordsRemoved += records.length - keep.length;
      if (keep.length > 0) out.push(rebuildBatch(info, keep));
    });
    if (changed) {
      log.replaceSegment(seg, out);
      result.segmentsRewritten++;
    }
  }
  log.cleanedUpTo = closed.length === log.segments.length - 1 ? log.active.baseOffset : (closed.at(-1)?.nextOffset ?? log.logStartOffset);
  log.lastCleanedAt = now;
  return result;
}
