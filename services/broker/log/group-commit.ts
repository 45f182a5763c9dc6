/**
 * Group commit: one fsync pass serves every write that arrived before it started. A caller
 * that needs durability awaits `durable()`, which resolves after the next pass completes, so
 * under load many acks=-1 produces share one fsync per partition instead of paying one each.
 * Passes run back to back while there is dirty data and stop when there is none (no timer
 * spinning on an idle broker).
 */
export interface Flushable {
  readonly needsFlush: boolean;
  flush(): Promise<void>;
}

export class GroupCommit {
  private dirty = new Set<Flushable>();
  private running = false;
  private waiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  private lastPassMs = 0;

  constructor(private readonly onPass?: (ms: number, files: number) => void) {}

  /** Marks `f` as holding unsynced data and makes sure a pass will run. */
  markDirty(f: Flushable): void {
    this.dirty.add(f);
    this.schedule();
  }

  /** Resolves once everything written before this call is on disk. */
  durable(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.running) return;
    this.running = true;
    // setImmediate lets every write from the current I/O phase join this pass.
    setImmediate(() => void this.pass());
  }

  private async pass(): Promise<void> {
    const batch = [...this.dirty].filter((f) => f.needsFlush);
    this.dirty.clear();
    const waiters = this.waiters;
    this.waiters = [];
    const started = performance.now();
    try {
      await Promise.all(batch.map((f) => f.flush()));
      this.lastPassMs = performance.now() - started;
      this.onPass?.(this.lastPassMs, batch.length);
      for (const w of waiters) w.resolve();
    } catch (err) {
      for (const w of waiters) w.reject(err as Error);
    }
    this.running = false;
    if (this.dirty.size > 0 || this.waiters.length > 0) this.schedule();
  }

  /** Flushes everything now (shutdown). */
  async flushAll(): Promise<void> {
    while (this.running || this.dirty.size > 0) await this.durable();
  }
}
