/**
 * Idempotent-producer bookkeeping for one partition: the last few batches per producer id, so
 * a retried batch (same producer, epoch and sequence range) is answered with the offset it was
 * first stored at instead of being written twice, and a gap in sequences is refused.
 * The state is rebuilt from the log on start-up (snapshots taken at segment roll bound the scan).
 */
import fs from 'node:fs';
import type { BatchInfo } from './record-batch.js';

/** Kafka keeps five in-flight batches per producer; the cache must cover at least that. */
const CACHED_BATCHES = 5;
const MAX_SEQUENCE = 0x7fffffff;

interface CachedBatch {
  firstSeq: number;
  lastSeq: number;
  baseOffset: number;
}

interface ProducerEntry {
  epoch: number;
  batches: CachedBatch[];
  lastSeen: number;
}

export type SequenceCheck =
  | { kind: 'append' }
  | { kind: 'duplicate'; baseOffset: number }
  | { kind: 'error'; error: 'OUT_OF_ORDER_SEQUENCE_NUMBER' | 'INVALID_PRODUCER_EPOCH' };

const lastSequence = (b: BatchInfo): number => (b.baseSequence + b.lastOffsetDelta) % (MAX_SEQUENCE + 1);

export class ProducerState {
  private producers = new Map<number, ProducerEntry>();

  /** Decides what to do with an incoming batch; does not change state. */
  check(b: BatchInfo): SequenceCheck {
    if (b.producerId < 0 || b.baseSequence < 0) return { kind: 'append' };
    const entry = this.producers.get(b.producerId);
    if (!entry) return { kind: 'append' };
    if (b.producerEpoch < entry.epoch) return { kind: 'error', error: 'INVALID_PRODUCER_EPOCH' };
    if (b.producerEpoch > entry.epoch) {
      // A bumped epoch starts its sequences again at 0.
      return b.baseSequence === 0 ? { kind: 'append' } : { kind: 'error', error: 'OUT_OF_ORDER_SEQUENCE_NUMBER' };
    }
    const last = lastSequence(b);
    for (const c of entry.batches) {
      if (c.firstSeq === b.baseSequence && c.lastSeq === last) return { kind: 'duplicate', baseOffset: c.baseOffset };
    }
    const tail = entry.batches.at(-1);
    if (tail && b.baseSequence !== (tail.lastSeq + 1) % (MAX_SEQUENCE + 1)) {
      return { kind: 'error', error: 'OUT_OF_ORDER_SEQUENCE_NUMBER' };
    }
    return { kind: 'append' };
  }

  /** Records a batch that was appended at `baseOffset` (also used when replaying the log). */
  record(b: BatchInfo, baseOffset: number, now = Date.now()): void {
    if (b.producerId < 0 || b.baseSequence < 0) return;
    let entry = this.producers.get(b.producerId);
    if (!entry || b.producerEpoch > entry.epoch) {
      entry = { epoch: b.producerEpoch, batches: [], lastSeen: now };
      this.producers.set(b.producerId, entry);
    }
    entry.batches.push({ firstSeq: b.baseSequence, lastSeq: lastSequence(b), baseOffset });
    if (entry.batches.length > CACHED_BATCHES) entry.batches.shift();
    entry.lastSeen = now;
  }

  /** Forgets producers idle for longer than `maxIdleMs`, bounding memory. */
  expire(maxIdleMs: number, now = Date.now()): void {
    for (const [pid, e] of this.producers) if (now - e.lastSeen > maxIdleMs) this.producers.delete(pid);
  }

  writeSnapshot(file: string): void {
    const tmp = `${file}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify([...this.producers]));
    fs.renameSync(tmp, file);
  }

  /** The state saved in `file`, or null when it is missing or unreadable (torn by a crash). */
  static readSnapshot(file: string): ProducerState | null {
    try {
      const entries = JSON.parse(fs.readFileSync(file, 'utf8')) as [number, ProducerEntry][];
      if (!Array.isArray(entries)) return null;
      const state = new ProducerState();
      state.producers = new Map(entries);
      return state;
    } catch {
      return null;
    }
  }
}
