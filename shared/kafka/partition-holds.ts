/**
 * Holds consumer partitions until a time: kafkajs `pause()` (from inside `eachBatch`) plus one
 * timer per partition that resumes it — no polling, and no handler sleeping. Used by the stages
 * that read delay topics (the scheduler's retry tiers, the webhooks' retry tiers), whose
 * partitions wait until their head record is due.
 */
export class PartitionHolds {
  private readonly timers = new Map<string, NodeJS.Timeout>();

  /** Pauses the partition now and resumes it after `ms`; a new hold of a held partition replaces the old one. */
  hold(topic: string, partition: number, ms: number, pause: () => () => void): void {
    const key = `${topic}:${partition}`;
    clearTimeout(this.timers.get(key));
    const resume = pause();
    this.timers.set(
      key,
      setTimeout(() => {
        this.timers.delete(key);
        resume();
      }, ms),
    );
  }

  /** Partitions held now. */
  get size(): number {
    return this.timers.size;
  }

  /** Drops every timer (on stop: the consumer is stopping, nothing is to be resumed). */
  clear(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}
