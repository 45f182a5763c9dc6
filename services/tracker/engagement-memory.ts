/**
 * What one tracker replica remembers of recent opens and clicks, to flag `engagement.first` (the
 * first open of a recipient's copy, the first click of each of its links) and to see click
 * bursts. A bounded LRU (`tracking.firstSeenEntries` keys; `lru-cache`): a copy opened again
 * after its key was evicted, or on another replica, is flagged first once more, so `first` is
 * a hint; analytics counts unique opens and clicks exactly by (message, recipient[, link]).
 */
import { LRUCache } from 'lru-cache';

/** One recipient's copy: tenants may reuse each other's message ids (foreign producers), so the tenant is part of it. */
export interface CopyKey {
  tenant: string;
  messageId: string;
  recipient: string;
}

const keyOf = (c: CopyKey): string => `${c.tenant}\n${c.messageId}\n${c.recipient}`;

export class EngagementMemory {
  private readonly seen: LRUCache<string, true>;
  private readonly lastClick: LRUCache<string, { atMs: number; linkIndex: number }>;

  constructor(maxEntries: number) {
    this.seen = new LRUCache({ max: maxEntries });
    this.lastClick = new LRUCache({ max: Math.max(1, Math.ceil(maxEntries / 4)) });
  }

  /** True the first time this (copy, open | link) is seen by this replica; remembers it. */
  first(copy: CopyKey, kind: 'open' | 'click', linkIndex: number): boolean {
    const key = `${keyOf(copy)}\n${kind === 'open' ? 'o' : linkIndex}`;
    if (this.seen.has(key)) return false;
    this.seen.set(key, true);
    return true;
  }

  /** The previous click of this copy (if remembered), and records this one. */
  click(copy: CopyKey, linkIndex: number, atMs: number): { atMs: number; linkIndex: number } | undefined {
    const key = keyOf(copy);
    const prev = this.lastClick.get(key);
    this.lastClick.set(key, { atMs, linkIndex });
    return prev;
  }
}
