/**
 * A bounded memo for the tracker's per-hit lookups that depend on one string only: `isbot`'s
 * verdict on a user agent (a long regular expression) and the truncation of a client address
 * (ipaddr parsing). Hits repeat the same few user agents and addresses (a mail client, an image
 * proxy, a scanner), so each is worked out once; the LRU bounds the memory a flood of distinct
 * values can take.
 */
import { LRUCache } from 'lru-cache';

/** `fn` remembered for the last `max` keys it was called with. `fn` must be pure. */
export function memoized<T extends NonNullable<unknown>>(fn: (key: string) => T, max: number): (key: string) => T {
  const cache = new LRUCache<string, T>({ max });
  return (key) => {
    const hit = cache.get(key);
    if (hit !== undefined) return hit;
    const value = fn(key);
    cache.set(key, value);
    return value;
  };
}
