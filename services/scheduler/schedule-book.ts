/**
 * The scheduler's index of scheduled requests (pure: no Kafka, no timers). Every request a
 * replica owns (its partitions of `email.scheduled`) has one small entry — id, tenant, priority,
 * sendAt, where it is in the log — and a body only while it is due within the horizon; the
 * bodies of later ones are dropped and re-read from the log when they come within it. So memory
 * is one entry per scheduled message (about 200 bytes, see the README) plus the bodies of the
 * next horizon, whatever is scheduled beyond it.
 */
import TinyQueue from 'tinyqueue';
import type { Priority } from '../../shared/config.js';

export interface ScheduledEntry {
  id: string;
  tenant: string;
  priority: Priority;
  /** Epoch ms: not released before. */
  sendAt: number;
  partition: number;
  offset: number;
  /** The record as it is on `email.scheduled`, only while within the horizon. */
  body?: Buffer;
  /** `releasing` from the moment it is taken for release: a cancellation is then too late. */
  state: 'pending' | 'releasing';
}

/** What a cancellation found. */
export type CancelOutcome = { kind: 'cancelled'; entry: ScheduledEntry } | { kind: 'too-late' } | { kind: 'unknown' };

/** Ids released lately, kept to answer a cancellation "too late" rather than "unknown". */
const RECENT_RELEASED = 100_000;

export class ScheduleBook {
  private readonly entries = new Map<string, ScheduledEntry>();
  /** Due order; entries removed from `entries` are skipped when they surface (lazy deletion). */
  private readonly queue = new TinyQueue<ScheduledEntry>([], (a, b) => a.sendAt - b.sendAt);
  /** Entries held without their body, in due order (lazy deletion, like `queue`). */
  private readonly bodiless = new TinyQueue<ScheduledEntry>([], (a, b) => a.sendAt - b.sendAt);
  private readonly recent = new Map<string, string>();
  /** One copy of each tenant name, however many entries carry it. */
  private readonly tenants = new Map<string, string>();

  constructor(private readonly horizonMs: number) {}

  get size(): number {
    return this.entries.size;
  }

  /** Bytes of bodies held (the part of memory the horizon bounds). */
  bodyBytes = 0;

  has(id: string): boolean {
    return this.entries.has(id);
  }

  /** Indexes a request read from the log; its body is kept only when due within the horizon. */
  add(e: Omit<ScheduledEntry, 'state'>, now: number): void {
    if (this.entries.has(e.id)) return;
    const tenant = this.tenants.get(e.tenant) ?? (this.tenants.set(e.tenant, e.tenant), e.tenant);
    // One fixed shape for every entry (no `delete`: that would turn it into a slow, large dictionary object).
    const entry: ScheduledEntry = { id: e.id, tenant, priority: e.priority, sendAt: e.sendAt, partition: e.partition, offset: e.offset, body: e.sendAt > now + this.horizonMs ? undefined : e.body, state: 'pending' };
    if (entry.body) this.bodyBytes += entry.body.length;
    else this.bodiless.push(entry);
    this.entries.set(entry.id, entry);
    this.queue.push(entry);
  }

  /** A body re-read from the log: kept when its entry still waits and is due within the horizon. */
  fillBody(id: string, partition: number, offset: number, body: Buffer, now: number): void {
    const e = this.entries.get(id);
    if (!e || e.body || e.partition !== partition || e.offset !== offset || e.sendAt > now + this.horizonMs) return;
    e.body = body;
    this.bodyBytes += body.length;
  }

  /**
   * Takes every pending entry due at `now` that has its body (marked releasing), and says from
   * which offset of each partition bodies must be re-read for entries due within the horizon.
   */
  takeDue(now: number): { ready: ScheduledEntry[]; reread: Map<number, number> } {
    const ready: ScheduledEntry[] = [];
    const waiting: ScheduledEntry[] = [];
    for (let top = this.queue.peek(); top && top.sendAt <= now; top = this.queue.peek()) {
      this.queue.pop();
      if (this.entries.get(top.id) !== top || top.state !== 'pending') continue;
      if (top.body) {
        top.state = 'releasing';
        ready.push(top);
      } else waiting.push(top);
    }
    for (const e of waiting) this.queue.push(e);
    return { ready, reread: this.rereads(now) };
  }

  /** Per partition, the lowest offset of an entry due within the horizon that has no body yet. */
  private rereads(now: number): Map<number, number> {
    const reread = new Map<number, number>();
    const kept: ScheduledEntry[] = [];
    for (let top = this.bodiless.peek(); top && top.sendAt <= now + this.horizonMs; top = this.bodiless.peek()) {
      this.bodiless.pop();
      if (this.entries.get(top.id) !== top || top.body) continue;
      reread.set(top.partition, Math.min(reread.get(top.partition) ?? Infinity, top.offset));
      kept.push(top);
    }
    for (const e of kept) this.bodiless.push(e);
    return reread;
  }

  /** Epoch ms of the earliest pending entry, if any. */
  nextDue(): number | undefined {
    for (let top = this.queue.peek(); top; top = this.queue.peek()) {
      if (this.entries.get(top.id) === top && top.state === 'pending') return top.sendAt;
      this.queue.pop();
    }
    return undefined;
  }

  /** Released for good: forgotten, remembered only as "released" for cancellations. */
  released(entries: ScheduledEntry[]): void {
    for (const e of entries) {
      this.forget(e);
      this.recent.set(e.id, e.tenant);
      if (this.recent.size > RECENT_RELEASED) this.recent.delete(this.recent.keys().next().value!);
    }
  }

  /** A release that failed (the broker): the entries wait again and are retried. */
  putBack(entries: ScheduledEntry[]): void {
    for (const e of entries) {
      if (this.entries.get(e.id) !== e) continue;
      e.state = 'pending';
      this.queue.push(e);
    }
  }

  /** Removes an entry released by an earlier run (its marker was read back). */
  dropReleased(id: string): void {
    const e = this.entries.get(id);
    if (e) this.released([e]);
  }

  /**
   * The cancellation decision for `tenant`: a pending entry is removed (and can no longer be
   * released); one being released, or released lately, is too late; another tenant's message
   * is unknown, so ids never leak across tenants.
   */
  cancel(id: string, tenant: string): CancelOutcome {
    const e = this.entries.get(id);
    if (e && e.tenant === tenant) {
      if (e.state === 'releasing') return { kind: 'too-late' };
      this.forget(e);
      return { kind: 'cancelled', entry: e };
    }
    if (!e && this.recent.get(id) === tenant) return { kind: 'too-late' };
    return { kind: 'unknown' };
  }

  /** Undoes `cancel` when the cancellation could not be recorded. */
  restore(e: ScheduledEntry): void {
    if (this.entries.has(e.id)) return;
    this.entries.set(e.id, e);
    if (e.body) this.bodyBytes += e.body.length;
    else this.bodiless.push(e);
    this.queue.push(e);
  }

  /** Forgets a partition's entries (it was assigned to another replica). */
  dropPartition(partition: number): void {
    for (const e of this.entries.values()) if (e.partition === partition) this.forget(e);
  }

  /** The offset to commit for `partition`: its oldest entry still waiting, else `scanned`. */
  commitOffset(partition: number, scanned: number): number {
    let low = scanned;
    for (const e of this.entries.values()) if (e.partition === partition && e.offset < low) low = e.offset;
    return low;
  }

  private forget(e: ScheduledEntry): void {
    if (this.entries.get(e.id) !== e) return;
    this.entries.delete(e.id);
    if (e.body) this.bodyBytes -= e.body.length;
  }
}
