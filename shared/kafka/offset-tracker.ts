/**
 * Tracks out-of-order completion within one partition: messages are handled concurrently, but
 * only the offset below which *everything* has finished may be committed. Pure and synchronous.
 */
export class OffsetTracker {
  private pending = new Set<string>();
  private done = new Set<string>();
  private order: bigint[] = [];
  private head = 0;
  /** Next offset to commit (one past the last contiguous finished offset), or null if nothing new. */
  private committable: string | null = null;

  /** Registers an offset as started, in log order. */
  start(offset: string): void {
    this.pending.add(offset);
    this.order.push(BigInt(offset));
  }

  finish(offset: string): void {
    this.pending.delete(offset);
    this.done.add(offset);
    while (this.head < this.order.length && this.done.has(String(this.order[this.head]))) {
      const o = this.order[this.head];
      this.done.delete(String(o));
      this.committable = String(o + 1n);
      this.head++;
    }
    if (this.head > 1024) {
      this.order = this.order.slice(this.head);
      this.head = 0;
    }
  }

  /** The offset to commit now (Kafka commits "next offset to read"), consuming it. */
  takeCommittable(): string | null {
    const c = this.committable;
    this.committable = null;
    return c;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /** Records started and not yet committable (in flight, or finished behind an unfinished one). */
  get uncommitted(): number {
    return this.order.length - this.head;
  }

  /** The first started record that has not finished (where a restart must begin), or null. */
  get firstUnfinished(): string | null {
    return this.head < this.order.length ? String(this.order[this.head]) : null;
  }
}
