/**
 * The suppression list as the API serves it: full records of `email.suppressions` in a
 * CompactedTable (every replica reads the whole topic), searched per tenant by address prefix,
 * reason and list, paged by an opaque cursor (the last address and list of the page), written
 * in bulk (every record produced at once, then one catch-up so the caller reads its writes).
 * A write never weakens a live entry (`replaces`): importing a list of manual entries does not
 * turn a complaint into a manual entry.
 */
import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { CompactedTable } from '../kafka/compacted-table.js';
import type { BatchingProducer } from '../kafka/batching-producer.js';
import { Topics } from '../topics.js';
import { SUPPRESSION_VERSION, SuppressionContract, parseSuppressionKey, suppressionKey, type Suppression, type SuppressionReason } from '../contracts/suppression.js';
import { replaces } from './suppression-rules.js';

/** Most entries one request may add (`POST /v1/suppressions` with `items`). */
export const MAX_SUPPRESSION_ITEMS = 10_000;

/** One entry to add (address already normalized and lower-cased by the caller). */
export interface SuppressionInput {
  address: string;
  list?: string;
  reason?: SuppressionReason;
  note?: string;
  expiresAt?: string;
}

export interface SuppressionQuery {
  /** Address prefix (case-insensitive). */
  address?: string;
  reason?: SuppressionReason;
  list?: string;
  cursor?: string;
  limit: number;
}

/** What the book needs of its table (a CompactedTable; anything with the same shape in tests). */
export interface SuppressionTable {
  get(key: string): Suppression | undefined;
  entries(): IterableIterator<[string, Suppression]>;
  catchUp(): Promise<void>;
}

const order = (s: Pick<Suppression, 'address' | 'list'>): string => `${s.address}\u0000${s.list ?? ''}`;

export function encodeCursor(s: Pick<Suppression, 'address' | 'list'>): string {
  return Buffer.from(order(s), 'utf8').toString('base64url');
}

/** The position a cursor names; undefined for one this book did not give out. */
export function decodeCursor(cursor: string): string | undefined {
  const v = Buffer.from(cursor, 'base64url').toString('utf8');
  return v.includes('\u0000') && encodeCursor({ address: v.slice(0, v.indexOf('\u0000')), list: v.slice(v.indexOf('\u0000') + 1) || undefined }) === cursor ? v : undefined;
}

export class SuppressionBook {
  private readonly now: () => Date;

  constructor(
    private readonly table: SuppressionTable,
    private readonly producer: Pick<BatchingProducer, 'send'>,
    opts: { now?: () => Date; topic?: string } = {},
  ) {
    this.now = opts.now ?? (() => new Date());
    this.topic = opts.topic ?? Topics.suppressions;
  }

  private readonly topic: string;

  /** A tenant's entries matching the query, in address order, from after the cursor. */
  search(tenant: string, q: SuppressionQuery): { items: Suppression[]; nextCursor?: string } {
    const after = q.cursor ? decodeCursor(q.cursor) : undefined;
    const prefix = q.address?.toLowerCase();
    const found: Suppression[] = [];
    for (const [key, s] of this.table.entries()) {
      const k = parseSuppressionKey(key);
      if (k?.tenant !== tenant || s.tenant !== tenant) continue;
      if (prefix && !s.address.startsWith(prefix)) continue;
      if (q.reason && s.reason !== q.reason) continue;
      if (q.list !== undefined && (s.list ?? '') !== q.list) continue;
      if (after !== undefined && order(s) <= after) continue;
      found.push(s);
    }
    found.sort((a, b) => (order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0));
    const items = found.slice(0, q.limit);
    return { items, ...(found.length > q.limit ? { nextCursor: encodeCursor(items[items.length - 1]) } : {}) };
  }

  /** Every entry of a tenant, in address order (the CSV export), one page at a time. */
  *all(tenant: string, pageSize = 10_000): Generator<Suppression> {
    let cursor: string | undefined;
    do {
      const page = this.search(tenant, { limit: pageSize, ...(cursor ? { cursor } : {}) });
      yield* page.items;
      cursor = page.nextCursor;
    } while (cursor);
  }

  get(tenant: string, address: string, list?: string): Suppression | undefined {
    return this.table.get(suppressionKey(tenant, address, list));
  }

  /**
   * Adds entries (durable and readable here when this resolves). An entry whose (address,
   * list) already holds a live entry at least as strong is kept as it was and reported in `kept`.
   */
  async add(tenant: string, inputs: SuppressionInput[]): Promise<{ stored: Suppression[]; kept: Suppression[] }> {
    const now = this.now();
    const nowMs = now.getTime();
    const stored: Suppression[] = [];
    const kept: Suppression[] = [];
    const byKey = new Map<string, Suppression>();
    for (const input of inputs) {
      const record: Suppression = {
        schemaVersion: SUPPRESSION_VERSION,
        tenant,
        address: input.address.toLowerCase(),
        ...(input.list ? { list: input.list } : {}),
        reason: input.reason ?? 'manual',
        ...(input.note ? { note: input.note } : {}),
        createdAt: now.toISOString(),
        ...(input.expiresAt ? { expiresAt: new Date(input.expiresAt).toISOString() } : {}),
      };
      const key = suppressionKey(tenant, record.address, record.list);
      const existing = byKey.get(key) ?? this.table.get(key);
      const strength = (s: Suppression) => ({ reason: s.reason, ...(s.expiresAt ? { expiresAtMs: Date.parse(s.expiresAt) } : {}) });
      if (existing && !replaces(strength(existing), strength(record), nowMs)) {
        kept.push(existing);
        continue;
      }
      byKey.set(key, record);
    }
    await Promise.all([...byKey].map(([key, value]) => this.producer.send(this.topic, { key, value: SuppressionContract.encode(value) })));
    stored.push(...byKey.values());
    await this.table.catchUp();
    return { stored, kept };
  }

  /** Removes an entry (a tombstone); false when there was none. */
  async remove(tenant: string, address: string, list?: string): Promise<boolean> {
    const key = suppressionKey(tenant, address, list);
    if (!this.table.get(key)) return false;
    await this.producer.send(this.topic, { key, value: null });
    await this.table.catchUp();
    return true;
  }
}

export interface OpenSuppressionBookOptions {
  kafka: Kafka;
  producer: BatchingProducer;
  logger: Logger;
  topic?: string;
}

/** Reads `email.suppressions` to its end into a SuppressionBook, then keeps it live. */
export async function openSuppressionBook(opts: OpenSuppressionBookOptions): Promise<{ book: SuppressionBook; stop(): Promise<void> }> {
  const table = new CompactedTable<Suppression>({
    kafka: opts.kafka,
    producer: opts.producer,
    topic: opts.topic ?? Topics.suppressions,
    logger: opts.logger,
    decode: (v) => SuppressionContract.decode(v),
    encode: (v) => SuppressionContract.encode(v),
  });
  try {
    await table.start();
  } catch (err) {
    await table.stop().catch(() => undefined);
    throw err;
  }
  return { book: new SuppressionBook(table, opts.producer, { topic: opts.topic }), stop: () => table.stop() };
}
