/**
 * When mail of each priority, to be sent now, last came in to this process — through the send
 * API or the SMTP gateway — so that work of a lower priority which fills the event loop in large
 * chunks (the API accepting a batch: services/ingest/acceptor.ts) can give way to it for a while.
 * One per process (`urgentMail`): under `npm start` the API, the gateway, the renderer and the
 * dispatcher share one event loop, and a critical message from either entry point crosses all of
 * it. Scheduled messages are not urgent now and are not reported.
 */
import { PRIORITIES, type Priority } from './config.js';

const RANK: Readonly<Record<Priority, number>> = { critical: 0, transactional: 1, bulk: 2 };

export class UrgentMail {
  private readonly lastSeen: Record<Priority, number> = { critical: -Infinity, transactional: -Infinity, bulk: -Infinity };

  constructor(private readonly now: () => number = Date.now) {}

  /** Mail of `priority` came in, to be sent now. */
  seen(priority: Priority): void {
    this.lastSeen[priority] = this.now();
  }

  /** Whether mail more urgent than `priority` came in within the last `ms`. */
  moreUrgentWithin(priority: Priority, ms: number): boolean {
    const since = this.now() - ms;
    return PRIORITIES.some((p) => RANK[p] < RANK[priority] && this.lastSeen[p] > since);
  }
}

/** The process's one record of urgent mail (tests make their own). */
export const urgentMail = new UrgentMail();
