/**
 * The suppression list as the dispatcher checks it: every entry of `email.suppressions` in one
 * `Map<record key, number>`, where the number packs the reason's rank (3 bits) and the expiry
 * in whole seconds (0: none) — a small integer for the usual permanent entry, so a million
 * entries cost the keys' strings and the map's slots, not a million decoded records. Read
 * from the compacted topic at start (suppression-table.ts: start resolves once the topic is read
 * to its end), then kept live.
 */
import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { SuppressionTable } from './suppression-table.js';
import { Topics } from '../topics.js';
import { parseSuppressionKey, type SuppressionReason } from '../contracts/suppression.js';

const UPPER = /[A-Z]/;
import { REASON_BY_RANK, REASON_RANK, type SuppressionStrength } from './suppression-rules.js';

/**
 * The entries by tenant, then scope ('' for tenant-wide, else the list), then address: a lookup
 * uses the strings of the dispatch record as they are (their hashes are computed once and kept
 * by the engine) instead of building a key string per check, and no key repeats its tenant.
 */
export class PackedSuppressionMap {
  private readonly tenants = new Map<string, Map<string, Map<string, number>>>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** By record key (`suppressionKey`); undefined for a key of any other shape. */
  get(key: string): number | undefined {
    const k = parseSuppressionKey(key);
    return k ? this.lookup(k.tenant, k.list ?? '', k.address) : undefined;
  }

  lookup(tenant: string, scope: string, address: string): number | undefined {
    return this.tenants.get(tenant)?.get(scope)?.get(address);
  }

  /** By record key (`suppressionKey`); a key of any other shape is ignored. */
  set(key: string, packed: number): void {
    const k = parseSuppressionKey(key);
    if (k) this.setParts(k.tenant, k.list ?? '', k.address, packed);
  }

  delete(key: string): void {
    const k = parseSuppressionKey(key);
    if (k) this.deleteParts(k.tenant, k.list ?? '', k.address);
  }

  /** `scope` is '' for a tenant-wide entry, else the list. */
  setParts(tenant: string, scope: string, address: string, packed: number): void {
    let scopes = this.tenants.get(tenant);
    if (!scopes) this.tenants.set(tenant, (scopes = new Map()));
    let addresses = scopes.get(scope);
    if (!addresses) scopes.set(scope, (addresses = new Map()));
    const before = addresses.size;
    addresses.set(address, packed);
    this.count += addresses.size - before;
  }

  deleteParts(tenant: string, scope: string, address: string): void {
    const scopes = this.tenants.get(tenant);
    const addresses = scopes?.get(scope);
    if (!addresses?.delete(address)) return;
    this.count--;
    if (addresses.size === 0) scopes!.delete(scope);
    if (scopes!.size === 0) this.tenants.delete(tenant);
  }
}

/** What the index needs of its store (the live table, or a PackedSuppressionMap in tests and benches). */
export interface PackedStore {
  get(key: string): number | undefined;
  lookup(tenant: string, scope: string, address: string): number | undefined;
  readonly size: number;
}

/** The packed value of an entry: rank + 8 × expiry seconds (0: no expiry). */
export function packSuppression(reason: SuppressionReason, expiresAt?: string | number): number {
  const ms = typeof expiresAt === 'string' ? Date.parse(expiresAt) : expiresAt;
  const seconds = ms === undefined || Number.isNaN(ms) ? 0 : Math.max(1, Math.ceil(ms / 1000));
  return REASON_RANK[reason] + 8 * seconds;
}

export function unpackSuppression(packed: number): SuppressionStrength {
  const rank = packed % 8;
  const seconds = (packed - rank) / 8;
  return { reason: REASON_BY_RANK[rank] ?? 'manual', ...(seconds > 0 ? { expiresAtMs: seconds * 1000 } : {}) };
}

/** A recipient the list holds back, and why. */
export interface SuppressionHit {
  reason: SuppressionReason;
  /** The list of the entry that matched; absent for a tenant-wide entry. */
  list?: string;
}

export class SuppressionIndex {
  constructor(private readonly store: PackedStore) {}

  get size(): number {
    return this.store.size;
  }

  /** The live entry under a record key (expired ones count as absent). */
  strength(key: string, nowMs: number): SuppressionStrength | undefined {
    const packed = this.store.get(key);
    if (packed === undefined) return undefined;
    const s = unpackSuppression(packed);
    return s.expiresAtMs !== undefined && s.expiresAtMs <= nowMs ? undefined : s;
  }

  /**
   * Whether mail of `tenant` (for `list`, when the message names one) must not go to `address`:
   * a tenant-wide entry, else the list's entry, that has not expired.
   */
  isSuppressed(tenant: string, address: string, list: string | undefined, nowMs: number): SuppressionHit | undefined {
    const a = UPPER.test(address) ? address.toLowerCase() : address;
    const wide = this.live(this.store.lookup(tenant, '', a), nowMs);
    if (wide) return { reason: wide };
    if (!list) return undefined;
    const scoped = this.live(this.store.lookup(tenant, list, a), nowMs);
    return scoped ? { reason: scoped, list } : undefined;
  }

  private live(packed: number | undefined, nowMs: number): SuppressionReason | undefined {
    if (packed === undefined) return undefined;
    const rank = packed % 8;
    if (packed >= 8 && ((packed - rank) / 8) * 1000 <= nowMs) return undefined;
    return REASON_BY_RANK[rank] ?? 'manual';
  }
}

export interface OpenSuppressionIndexOptions {
  kafka: Kafka;
  logger: Logger;
  /** Defaults to `email.suppressions`. */
  topic?: string;
  timeoutMs?: number;
}

/**
 * The index over `email.suppressions`, not yet reading: `table.start()` reads the topic to its
 * end (and then keeps the index live), `table.stop()` ends that. Created before it loads so a
 * stage can hand the index to its handler first and hold records until the load is done.
 */
export function createSuppressionIndex(opts: OpenSuppressionIndexOptions): { index: SuppressionIndex; table: SuppressionTable } {
  const table = new SuppressionTable({ kafka: opts.kafka, topic: opts.topic ?? Topics.suppressions, logger: opts.logger });
  return { index: new SuppressionIndex(table), table };
}

/** Reads `email.suppressions` to its end into a SuppressionIndex, then keeps it live. */
export async function openSuppressionIndex(opts: OpenSuppressionIndexOptions): Promise<{ index: SuppressionIndex; table: SuppressionTable; stop(): Promise<void> }> {
  const { index, table } = createSuppressionIndex(opts);
  try {
    await table.start(opts.timeoutMs);
  } catch (err) {
    await table.stop().catch(() => undefined);
    throw err;
  }
  return { index, table, stop: () => table.stop() };
}
