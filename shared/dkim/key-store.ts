/**
 * The live DKIM key table of a running renderer: the keys directory read at start-up, then
 * again whenever it changes (fs.watch on the directory and each domain directory, which also
 * sees a Kubernetes Secret's `..data` symlink swap) and every `rescanMs` as a safety net
 * (watches miss changes on some file systems and across symlink swaps). Lookups never wait on
 * the file system: they read the last table.
 *
 * A reload that finds problems still applies what it could read (a key that turned bad keeps
 * its last good version) and reports the problems through 'issues'; it never throws into the
 * renderer. Emits 'reloaded' (KeyTable) and 'issues' (string[]).
 */
import { EventEmitter } from 'node:events';
import fs, { type FSWatcher } from 'node:fs';
import path from 'node:path';
import { EMPTY_KEY_TABLE, keyFor, readKeyDirectory, type DkimKey, type KeyTable } from './dkim-keys.js';

export interface KeyStoreOptions {
  dir: string;
  /** Full re-read period; 0: only on watch events. */
  rescanMs: number;
  /** Coalesces a burst of watch events (a Secret update touches several entries) into one reload. */
  debounceMs?: number;
}

export class DkimKeyStore extends EventEmitter {
  private table: KeyTable = EMPTY_KEY_TABLE;
  private watchers = new Map<string, FSWatcher>();
  private timer?: NodeJS.Timeout;
  private debounce?: NodeJS.Timeout;
  private running?: Promise<void>;
  private again = false;
  private closed = false;
  /** The problems of the last reload (empty when it was clean). */
  issues: string[] = [];

  constructor(private readonly opts: KeyStoreOptions) {
    super();
  }

  /** Reads the directory once; throws when the directory itself cannot be read (bad config). */
  async start(): Promise<void> {
    const { table, issues } = await readKeyDirectory(this.opts.dir);
    this.apply(table, issues);
    if (this.opts.rescanMs > 0) this.timer = setInterval(() => void this.reload(), this.opts.rescanMs).unref();
  }

  /** The key that signs mail from `fromDomain`, or undefined. */
  keyFor(fromDomain: string): DkimKey | undefined {
    return keyFor(this.table, fromDomain);
  }

  current(): KeyTable {
    return this.table;
  }

  /** Re-reads the directory now (one reload at a time; calls during one queue a single follow-up). */
  reload(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          const { table, issues } = await readKeyDirectory(this.opts.dir, this.table);
          if (!this.closed) this.apply(table, issues);
        } catch (err) {
          // The directory vanished or is unreadable: keep signing with what we have.
          this.report([`${this.opts.dir}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); keeping the keys loaded before`]);
        }
      } while (this.again && !this.closed);
    })().finally(() => (this.running = undefined));
    return this.running;
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    clearTimeout(this.debounce);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }

  private apply(table: KeyTable, issues: string[]): void {
    this.table = table;
    this.report(issues);
    this.watch([this.opts.dir, ...[...table.domains.values()].map((d) => path.dirname(d.keys[0].file))]);
    this.emit('reloaded', table);
  }

  private report(issues: string[]): void {
    this.issues = issues;
    if (issues.length > 0) this.emit('issues', issues);
  }

  /** Watches are made afresh on every reload: a watch on a path that was a symlink follows the old target. */
  private watch(dirs: string[]): void {
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    for (const dir of dirs) {
      try {
        const w = fs.watch(dir, { persistent: false }, () => this.changed());
        w.on('error', () => {
          w.close();
          this.watchers.delete(dir);
          this.changed();
        });
        this.watchers.set(dir, w);
      } catch {
        // Not watchable (gone, or too many watches): the periodic rescan covers it.
      }
    }
  }

  private changed(): void {
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.reload(), this.opts.debounceMs ?? 100).unref();
  }
}
