/**
 * What one tracker replica remembers of recent opens and clicks, to flag `engagement.first` (the
 * first open of a recipient's copy, the first click of each of its links) and to see click
 * bursts. A bounded LRU (`tracking.firstSeenEntries` keys; `lru-cache`): a copy opened again
 * after its key was evicted, or on another replica, is flagged first once more, so `first` is
 * a hint; analytics counts unique opens and clicks exactly by (message, recipient[, link]).
 */
import { LRUCache } from 'lru-cache';

export class EngagementMemory {
  private readonly seen: LRUCache<string, true>;
  private readonly lastClick: LRUCache<string, { atMs: number; linkIndex: number }>;

  constructor(maxEntries: number) {
    this.seen = new LRUCache({ max: maxEntries });
    this.lastClick = new LRUCache({ max: Math.max(1, Math.ceil(maxEntries / 4)) });
  }

  /** True the first time this (copy, open | link) is seen by this replica; remembers it. */
  first(messageId: string, recipient: string, kind: 'open' | 'click', linkIndex: number): boolean {
    const key = `${messageId}\n${recipient}\n${kind === 'open' ? 'o' : linkIndex}`;
    if (this.seen.has(key)) return false;
    this.seen.set(key, true);
    return true;
  }

  /** The previous click of this copy (if remembered), and records this one. */
  click(messageId: string, recipient: string, linkIndex: number, atMs: number): { atMs: number; linkIndex: number } | undefined {
    const key = `${messageId}\n${recipient}`;
    const prev = this.lastClick.get(key);
    this.lastClick.set(key, { atMs, linkIndex });
    return prev;
  }
}
