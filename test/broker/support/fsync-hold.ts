/**
 * Fault injection for durability tests: holds every `fs.fdatasync` the in-process broker
 * starts until `release()`, so a test can look at the broker while data is written but not yet
 * durable. (The broker calls `fs.fdatasync` through the module object, so replacing it here
 * reaches it.) Released and restored automatically when the test ends.
 */
import fs from 'node:fs';

export interface FsyncHold {
  /** fdatasync calls waiting to run. */
  waiting(): number;
  release(): void;
}

export function holdFsyncs(t: { after: (fn: () => void) => void }): FsyncHold {
  const original = fs.fdatasync;
  const queue: Array<() => void> = [];
  let holding = true;
  (fs as { fdatasync: unknown }).fdatasync = (fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => {
    if (!holding) return original(fd, cb);
    queue.push(() => original(fd, cb));
  };
  const release = (): void => {
    if (!holding) return;
    holding = false;
    (fs as { fdatasync: unknown }).fdatasync = original;
    for (const run of queue.splice(0)) run();
  };
  t.after(release);
  return { waiting: () => queue.length, release };
}
