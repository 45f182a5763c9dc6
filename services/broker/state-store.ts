/**
 * A small durable key-value store for broker state that is not a topic: committed consumer
 * offsets, group metadata and the producer-id counter. Writes append a CRC-framed JSON entry to
 * a journal and become durable with the next group-commit pass; on open the journal is replayed
 * (a torn last entry after a crash is cut off) and, when it has grown, rewritten as a snapshot
 * with an atomic rename.
 */
import fs from 'node:fs';
import path from 'node:path';
import { crc32c } from '@node-rs/crc32';
import { syncDir } from './log/sync-dir.js';

const HEADER = 8;

export interface StateStoreOptions {
  /** Rewrite the journal once it grows past this many bytes (default 8 MiB). */
  compactBytes: number;
}

export class StateStore {
  private map = new Map<string, unknown>();
  private fd: number;
  private size = 0;
  private unsynced = false;
  private compactDue = false;
  /** Flushes run one after another, so compaction never swaps the fd under a running fdatasync. */
  private syncing: Promise<void> = Promise.resolve();
  private readonly file: string;
  private readonly compactBytes: number;

  /** `onWrite` is told about every write, so the owner can schedule a group-commit pass. */
  constructor(dir: string, private readonly onWrite: () => void = () => undefined, opts: Partial<StateStoreOptions> = {}) {
    this.compactBytes = opts.compactBytes ?? 8 * 1024 * 1024;
    fs.mkdirSync(dir, { recursive: true });
    this.file = path.join(dir, 'state.journal');
    fs.rmSync(`${this.file}.tmp`, { force: true });
    const existed = fs.existsSync(this.file);
    this.replay();
    this.fd = fs.openSync(this.file, 'a+');
    if (!existed) syncDir(dir);
    if (this.size > this.compactBytes / 2) this.compact();
  }

  private replay(): void {
    if (!fs.existsSync(this.file)) return;
    const buf = fs.readFileSync(this.file);
    let pos = 0;
    while (pos + HEADER <= buf.length) {
      const len = buf.readUInt32BE(pos);
      const end = pos + HEADER + len;
      if (end > buf.length || crc32c(buf.subarray(pos + HEADER, end)) !== buf.readUInt32BE(pos + 4)) break;
      const { k, v } = JSON.parse(buf.toString('utf8', pos + HEADER, end)) as { k: string; v: unknown };
      if (v === null) this.map.delete(k);
      else this.map.set(k, v);
      pos = end;
    }
    if (pos < buf.length) fs.truncateSync(this.file, pos);
    this.size = pos;
  }

  private frame(k: string, v: unknown): Buffer {
    const body = Buffer.from(JSON.stringify({ k, v }));
    const head = Buffer.allocUnsafe(HEADER);
    head.writeUInt32BE(body.length, 0);
    head.writeUInt32BE(crc32c(body), 4);
    return Buffer.concat([head, body]);
  }

  get<T>(key: string): T | undefined {
    return this.map.get(key) as T | undefined;
  }

  /** Entries whose key starts with `prefix`. */
  *entries<T>(prefix: string): Iterable<[string, T]> {
    for (const [k, v] of this.map) if (k.startsWith(prefix)) yield [k, v as T];
  }

  /** Sets (or, with null, deletes) keys; durable after the next `flush()`. */
  set(changes: Array<[string, unknown]>): void {
    const frames = changes.map(([k, v]) => this.frame(k, v));
    const buf = Buffer.concat(frames);
    fs.writeSync(this.fd, buf);
    this.size += buf.length;
    this.unsynced = true;
    for (const [k, v] of changes) {
      if (v === null) this.map.delete(k);
      else this.map.set(k, v);
    }
    // Compaction waits for the next flush: doing it here could close the fd while a flush's
    // fdatasync is still running on it.
    if (this.size > this.compactBytes) this.compactDue = true;
    this.onWrite();
  }

  get needsFlush(): boolean {
    return this.unsynced || this.compactDue;
  }

  /** Resolves once every write made before the call is on disk. */
  flush(): Promise<void> {
    const run = async (): Promise<void> => {
      if (this.compactDue) {
        this.compact();
        return;
      }
      if (!this.unsynced) return;
      this.unsynced = false;
      const fd = this.fd;
      await new Promise<void>((resolve, reject) => fs.fdatasync(fd, (e) => (e ? reject(e) : resolve())));
    };
    this.syncing = this.syncing.then(run, run);
    return this.syncing;
  }

  /** Rewrites the journal as one entry per live key, durably (file and directory fsynced). */
  private compact(): void {
    const tmp = `${this.file}.tmp`;
    const parts = [...this.map].map(([k, v]) => this.frame(k, v));
    const buf = Buffer.concat(parts);
    const tfd = fs.openSync(tmp, 'w');
    try {
      fs.writeSync(tfd, buf);
      fs.fsyncSync(tfd);
    } finally {
      fs.closeSync(tfd);
    }
    fs.renameSync(tmp, this.file);
    // Until the directory entry is durable a power cut could bring back the old journal,
    // which lacks the writes this compaction just declared synced.
    syncDir(path.dirname(this.file));
    fs.closeSync(this.fd);
    this.fd = fs.openSync(this.file, 'a+');
    this.size = buf.length;
    this.unsynced = false;
    this.compactDue = false;
  }

  close(): void {
    try {
      fs.fsyncSync(this.fd);
      fs.closeSync(this.fd);
    } catch {
      // already closed
    }
  }
}
