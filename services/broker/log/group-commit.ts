/**
 * Group commit, per file: one fsync of a file serves every write to it that arrived before the
 * fsync started. A caller that needs durability awaits `durableFor(files)` (or `durable()` for
 * everything), which resolves once an fsync of each file covering its writes has completed, so
 * under load many acks=-1 produces to one partition share one fsync instead of paying one each.
 *
 * Files sync independently: a file written while its own fsync runs gets its next one as soon
 * as that completes, and never waits for other files' fsyncs. (One global pass over all dirty
 * files made a produce to one partition wait for an fsync of the consumer-offset journal or of
 * another partition that happened to be running when it arrived — one extra fsync on every hop of
 * a single message — and held every partition's high watermark until the slowest file was done.)
 * Nothing runs while nothing is dirty (no timer spinning on an idle broker).
 */
export interface Flushable {
  readonly needsFlush: boolean;
  flush(): Promise<void>;
}

interface Waiter {
  resolve: () => void;
  reject: (e: Error) => void;
}

interface FileState {
  /** An fsync of this file is running. */
  running: boolean;
  /** Written (marked dirty) since the running fsync started: it needs another. */
  again: boolean;
  /** Waiting for the running fsync. */
  current: Waiter[];
  /** Waiting for the next fsync (not started yet). */
  next: Waiter[];
}

export class GroupCommit {
  private files = new Map<Flushable, FileState>();
  /** Files whose next fsync starts at the end of this I/O phase. */
  private scheduled = new Set<Flushable>();
  private immediate?: NodeJS.Immediate;

  /** `onPass(ms, files)`: called after each fsync with its duration (files is always 1). */
  constructor(private readonly onPass?: (ms: number, files: number) => void) {}

  /** Marks `f` as holding unsynced data and makes sure an fsync of it will run. */
  markDirty(f: Flushable): void {
    const s = this.state(f);
    if (s.running) s.again = true;
    else this.schedule(f);
  }

  /** Resolves once everything written to `files` before this call is on disk. */
  durableFor(files: Iterable<Flushable>): Promise<void> {
    const waits: Array<Promise<void>> = [];
    for (const f of new Set(files)) {
      waits.push(
        new Promise<void>((resolve, reject) => {
          const s = this.state(f);
          // A running fsync covers every write made before it started, i.e. unless marked since.
          if (s.running && !s.again) s.current.push({ resolve, reject });
          else {
            s.next.push({ resolve, reject });
            if (!s.running) this.schedule(f);
          }
        }),
      );
    }
    return Promise.all(waits).then(() => undefined);
  }

  /** Resolves once everything written before this call is on disk. */
  durable(): Promise<void> {
    const pending = [...this.files].filter(([f, s]) => s.running || this.scheduled.has(f)).map(([f]) => f);
    if (pending.length === 0) return new Promise((resolve) => setImmediate(resolve));
    return this.durableFor(pending);
  }

  /** Flushes everything now (shutdown). */
  async flushAll(): Promise<void> {
    while (this.scheduled.size > 0 || [...this.files.values()].some((s) => s.running)) await this.durable();
  }

  private state(f: Flushable): FileState {
    let s = this.files.get(f);
    if (!s) {
      s = { running: false, again: false, current: [], next: [] };
      this.files.set(f, s);
    }
    return s;
  }

  private schedule(f: Flushable): void {
    this.scheduled.add(f);
    // setImmediate lets every write from the current I/O phase join this fsync.
    this.immediate ??= setImmediate(() => {
      this.immediate = undefined;
      const files = [...this.scheduled];
      this.scheduled.clear();
      for (const file of files) void this.sync(file);
    });
  }

  private async sync(f: Flushable): Promise<void> {
    const s = this.state(f);
    s.running = true;
    s.again = false;
    s.current = s.next;
    s.next = [];
    const started = performance.now();
    try {
      if (f.needsFlush) {
        await f.flush();
        this.onPass?.(performance.now() - started, 1);
      }
      for (const w of s.current) w.resolve();
    } catch (err) {
      for (const w of s.current) w.reject(err as Error);
    }
    s.current = [];
    s.running = false;
    if (s.again || s.next.length > 0) this.schedule(f);
    // A file nobody waits for and nothing was written to since is forgotten (deleted partitions).
    else if (!f.needsFlush) this.files.delete(f);
  }
}
