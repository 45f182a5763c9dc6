/**
 * How far an in-memory view of a topic has read, per partition, and waiting until it has read
 * up to the log end: what lets a table answer only once it holds everything written before a
 * moment (start-up, or a caller's own write). Shared by every view that reads a whole topic.
 */
import type { Admin } from 'kafkajs';

export class AppliedOffsets {
  /** Highest offset applied per partition. */
  private readonly applied = new Map<number, bigint>();
  private waiters: Array<{ partition: number; offset: bigint; resolve: () => void }> = [];

  /** Records that everything up to `offset` of `partition` is applied, and wakes who waited for it. */
  mark(partition: number, offset: string | bigint): void {
    this.applied.set(partition, BigInt(offset));
    if (this.waiters.length === 0) return;
    this.waiters = this.waiters.filter((w) => {
      if ((this.applied.get(w.partition) ?? -1n) < w.offset) return true;
      w.resolve();
      return false;
    });
  }

  /** Resolves once every record of `topic` written before this call has been applied. */
  async catchUp(admin: Admin, topic: string): Promise<void> {
    const ends = await admin.fetchTopicOffsets(topic);
    await Promise.all(ends.filter((e) => BigInt(e.high) > BigInt(e.low)).map((e) => this.waitFor(e.partition, BigInt(e.high) - 1n)));
  }

  private waitFor(partition: number, offset: bigint): Promise<void> {
    if ((this.applied.get(partition) ?? -1n) >= offset) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ partition, offset, resolve }));
  }
}
