/**
 * What the sink knows per partition since it was (re)assigned: how far it has handled records
 * itself, and which records ClickHouse already held when it took the partition over. Decides,
 * per record, whether it still needs a row. Pure and synchronous.
 *
 * Why both: after a rebalance Kafka redelivers from the committed offset, which may be behind
 * what this process already buffered or inserted (`held`), and behind what a crashed
 * predecessor inserted without committing (`stored`, learnt from ClickHouse once per
 * assignment).
 */
export type RecordFate = 'new' | 'held' | 'stored';

interface State {
  through: bigint | null;
  stored: Set<string>;
  storedMax: bigint;
}

export class PartitionProgress {
  private states = new Map<string, State>();

  /** True once `reconciled` was called for the partition since the last reset. */
  isKnown(tp: string): boolean {
    return this.states.has(tp);
  }

  /** Records the offsets ClickHouse already holds for the partition (from its first offset on). */
  reconciled(tp: string, stored: Set<string>): void {
    let max = -1n;
    for (const o of stored) if (BigInt(o) > max) max = BigInt(o);
    this.states.set(tp, { through: null, stored, storedMax: max });
  }

  /** Whether a record still needs a row. Call only for known partitions. */
  fate(tp: string, offset: string): RecordFate {
    const s = this.states.get(tp);
    if (!s) throw new Error(`partition ${tp} not reconciled`);
    const o = BigInt(offset);
    if (s.through !== null && o <= s.through) return 'held';
    if (o <= s.storedMax && s.stored.has(offset)) return 'stored';
    return 'new';
  }

  /** Marks a record handled (buffered, dead-lettered or skipped). */
  handled(tp: string, offset: string): void {
    const s = this.states.get(tp);
    if (!s) return;
    const o = BigInt(offset);
    if (s.through === null || o > s.through) s.through = o;
    // Once past what ClickHouse held, the set is no longer needed.
    if (s.stored.size > 0 && o >= s.storedMax) s.stored = new Set();
  }

  /** Forgets everything (a new assignment: every partition is reconciled again). */
  reset(): void {
    this.states.clear();
  }
}
