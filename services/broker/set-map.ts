/** Sets of values by key (an index): a key is dropped with its last value. */
export class SetMap<K, V> {
  private readonly map = new Map<K, Set<V>>();

  add(key: K, value: V): void {
    const set = this.map.get(key);
    if (set) set.add(value);
    else this.map.set(key, new Set([value]));
  }

  delete(key: K, value: V): void {
    const set = this.map.get(key);
    if (set?.delete(value) && set.size === 0) this.map.delete(key);
  }

  /** The values of `key` (a copy: callers may change the index while going through it). */
  values(key: K): V[] {
    const set = this.map.get(key);
    return set ? [...set] : [];
  }
}
