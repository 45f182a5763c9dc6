/**
 * Mail of each priority, to be sent now, that came in to this process — through the send API or
 * the SMTP gateway — and is not through it yet, so that work of a lower priority which fills the
 * event loop in large chunks (the API accepting a batch: services/ingest/acceptor.ts) can give
 * way to it while it crosses the process. One per process (`urgentMail`): under `npm start` the
 * API, the gateway, the renderer and the dispatcher share one event loop, and a critical message
 * from either entry point crosses all of it. Scheduled messages are not urgent now and are not
 * reported.
 *
 * A message reported with its id counts until the dispatcher in this process is done with it
 * (`done`: its first dispatch record handled) or until the caller's window has passed, whichever
 * comes first: where the dispatcher runs elsewhere (a deployment with a pod per stage) the window
 * alone ends it. A message reported without an id counts for the whole window. At most
 * `MAX_TRACKED` messages per priority are followed by id; beyond that (a large critical batch)
 * the rest count for the whole window, like messages without an id.
 */
import { PRIORITIES, type Priority } from './config.js';

const RANK: Readonly<Record<Priority, number>> = { critical: 0, transactional: 1, bulk: 2 };

/** Messages followed by id per priority, at most. */
export const MAX_TRACKED = 10_000;
/** A message followed by id is forgotten after this long even if never done (it is no longer "now"). */
const FORGET_MS = 60_000;

interface Entry {
  id: string;
  at: number;
}

/** Reported messages of one priority in the order they came, those still pending in `pending`. */
class Arrivals {
  private items: Entry[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  push(e: Entry): void {
    this.items.push(e);
  }

  /** Drops from the front what `keep` refuses; returns the first entry it keeps. */
  front(keep: (e: Entry) => boolean): Entry | undefined {
    while (this.head < this.items.length && !keep(this.items[this.head])) this.head++;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return this.items[this.head];
  }
}

export class UrgentMail {
  /** When mail of each priority without an id (or beyond MAX_TRACKED) last came in. */
  private readonly lastSeen: Record<Priority, number> = { critical: -Infinity, transactional: -Infinity, bulk: -Infinity };
  /** Messages followed by id and not done yet: when each came in. */
  private readonly pending = new Map<string, number>();
  private readonly arrivals: Record<Priority, Arrivals> = { critical: new Arrivals(), transactional: new Arrivals(), bulk: new Arrivals() };

  constructor(private readonly now: () => number = Date.now) {}

  /** Mail of `priority` came in, to be sent now (its message id, when known, lets `done` end it early). */
  seen(priority: Priority, messageId?: string): void {
    const at = this.now();
    // Nothing is less urgent than bulk: its mail never makes anything give way, so is not followed.
    if (priority === 'bulk') return;
    const arrivals = this.arrivals[priority];
    arrivals.front((e) => this.isPending(e, at - FORGET_MS));
    if (messageId === undefined || arrivals.size >= MAX_TRACKED) {
      this.lastSeen[priority] = at;
      return;
    }
    this.pending.set(messageId, at);
    arrivals.push({ id: messageId, at });
  }

  /** The dispatcher in this process is done with the message (sent, deferred, failed or suppressed). */
  done(messageId: string): void {
    this.pending.delete(messageId);
  }

  /** Whether mail more urgent than `priority` came in within the last `ms` and is not done. */
  moreUrgentWithin(priority: Priority, ms: number): boolean {
    const since = this.now() - ms;
    return PRIORITIES.some((p) => RANK[p] < RANK[priority] && (this.lastSeen[p] > since || this.arrivals[p].front((e) => this.isPending(e, since)) !== undefined));
  }

  /** True when `e` came in after `since` and is not done; else forgets it. */
  private isPending(e: Entry, since: number): boolean {
    // The id may have been reported again since (its latest arrival is the one that counts).
    const at = this.pending.get(e.id);
    if (at !== e.at) return false;
    if (at > since) return true;
    this.pending.delete(e.id);
    return false;
  }
}

/** The process's one record of urgent mail (tests make their own). */
export const urgentMail = new UrgentMail();
