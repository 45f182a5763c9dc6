/**
 * The suppression list as the dispatcher checks it: every entry of `email.suppressions` in one
 * `Map<record key, number>`, where the number packs the reason's rank (3 bits) and the expiry
 * in whole seconds (0: none) — a small integer for the usual permanent entry, so a million
 * entries cost the keys' strings and the map's slots, not a million decoded records. Read
 * from the compacted topic at start (a CompactedTable: start resolves once the topic is read to
 * its end), then kept live.
 */
import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { CompactedTable } from '../kafka/compacted-table.js';
import type { BatchingProducer } from '../kafka/batching-producer.js';
import { Topics } from '../topics.js';
import { suppressionKey, type SuppressionReason } from '../contracts/suppression.js';
import { REASON_BY_RANK, REASON_RANK, type SuppressionStrength } from './suppression-rules.js';

/** What the index needs of its store (a CompactedTable, or a plain Map in tests and benches). */
export interface PackedStore {
  get(key: string): number | undefined;
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

/** Decodes a record value into its packed form (only `reason` and `expiresAt` matter here). */
export function decodePacked(value: Buffer): number {
  const v = JSON.parse(value.toString('utf8')) as { reason?: unknown; expiresAt?: unknown };
  const reason = typeof v.reason === 'string' && v.reason in REASON_RANK ? (v.reason as SuppressionReason) : undefined;
  if (!reason) throw new TypeError('not a suppression record (no known reason)');
  return packSuppression(reason, typeof v.expiresAt === 'string' ? v.expiresAt : undefined);
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
    const a = address.toLowerCase();
    const wide = this.live(suppressionKey(tenant, a), nowMs);
    if (wide) return { reason: wide };
    if (!list) return undefined;
    const scoped = this.live(suppressionKey(tenant, a, list), nowMs);
    return scoped ? { reason: scoped, list } : undefined;
  }

  private live(key: string, nowMs: number): SuppressionReason | undefined {
    const packed = this.store.get(key);
    if (packed === undefined) return undefined;
    const rank = packed % 8;
    if (packed >= 8 && ((packed - rank) / 8) * 1000 <= nowMs) return undefined;
    return REASON_BY_RANK[rank] ?? 'manual';
  }
}

export interface OpenSuppressionIndexOptions {
  kafka: Kafka;
  producer: BatchingProducer;
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
export function createSuppressionIndex(opts: OpenSuppressionIndexOptions): { index: SuppressionIndex; table: CompactedTable<number> } {
  const table = new CompactedTable<number>({
    kafka: opts.kafka,
    producer: opts.producer,
    topic: opts.topic ?? Topics.suppressions,
    logger: opts.logger,
    decode: decodePacked,
    encode: () => {
      throw new Error('the suppression index is read-only; write records through the suppression book or the feeder');
    },
  });
  return { index: new SuppressionIndex(table), table };
}

/** Reads `email.suppressions` to its end into a SuppressionIndex, then keeps it live. */
export async function openSuppressionIndex(opts: OpenSuppressionIndexOptions): Promise<{ index: SuppressionIndex; table: CompactedTable<number>; stop(): Promise<void> }> {
  const { index, table } = createSuppressionIndex(opts);
  try {
    await table.start(opts.timeoutMs);
  } catch (err) {
    await table.stop().catch(() => undefined);
    throw err;
  }
  return { index, table, stop: () => table.stop() };
}
