/**
 * Critical work in flight, so the other lanes of a stage can step aside. On a shared CPU a
 * process's event loop is the last resource critical and bulk mail share (topics, consumers and
 * connections are separate): a backlog handled at full speed would delay each critical message by
 * the work queued around each of its steps. The other lanes wait at most `maxWaitMs` per record
 * before they start it, so a steady critical stream slows them down but never stops them. Used by
 * the dispatcher (bulk waits) and the renderer (every non-critical lane waits).
 */
export class CriticalActivity {
  private inFlight = 0;
  private waiters: Array<() => void> = [];

  constructor(private readonly maxWaitMs: number) {}

  track<T>(p: Promise<T>): Promise<T> {
    this.inFlight++;
    return p.finally(() => {
      if (--this.inFlight > 0) return;
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** Resolves when no critical record is in flight, or after `maxWaitMs`. */
  idle(): Promise<void> {
    if (this.inFlight === 0 || this.maxWaitMs <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, this.maxWaitMs);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
