/**
 * `Idempotency-Key` across restarts and replicas: claims live on the compacted
 * `email.idempotency` topic and every replica keeps them in memory (a CompactedTable whose
 * merge is `mergeClaims`). A request claims its key, produces its message, then marks the
 * claim accepted; the rules are in `idempotency-claims.ts`, the reasoning in the README.
 */
import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { Topics } from '../../shared/topics.js';
import { CompactedTable } from '../../shared/kafka/compacted-table.js';
import type { BatchingProducer } from '../../shared/kafka/batching-producer.js';
import { claimKey, decideClaim, mergeClaims, type IdempotencyClaim } from './idempotency-claims.js';

export interface IdempotencyOptions {
  /** How long a key keeps answering with its message id. */
  ttlMs: number;
  /** How long a pending claim is left to its request before a retry may complete it. */
  leaseMs: number;
  now?: () => number;
}

/** The result of claiming a key for a request. */
export type Acquired =
  /** This request owns the claim: produce `messageId` (a fresh id, or the one of a claim it completes). */
  | { kind: 'proceed'; claim: IdempotencyClaim; completing: boolean }
  | { kind: 'replay'; messageId: string }
  | { kind: 'conflict' }
  | { kind: 'in-progress'; retryAfterMs: number };

/** The few calls the store needs from a table; a CompactedTable in production. */
export interface ClaimTable {
  get(key: string): IdempotencyClaim | undefined;
  put(key: string, value: IdempotencyClaim): Promise<IdempotencyClaim | undefined>;
  /** Resolves once every record written before the call has been applied. */
  catchUp(): Promise<void>;
}

export class IdempotencyStore {
  private readonly now: () => number;

  constructor(
    private readonly table: ClaimTable,
    private readonly opts: IdempotencyOptions,
  ) {
    this.now = opts.now ?? Date.now;
  }

  /** The table over `email.idempotency`, not yet started. */
  static table(kafka: Kafka, producer: BatchingProducer, logger: Logger): CompactedTable<IdempotencyClaim> {
    return new CompactedTable<IdempotencyClaim>({
      kafka,
      producer,
      topic: Topics.idempotency,
      logger,
      decode: (buf) => JSON.parse(buf.toString('utf8')) as IdempotencyClaim,
      encode: (claim) => Buffer.from(JSON.stringify(claim)),
      merge: mergeClaims,
    });
  }

  /**
   * Claims `key` for a request. Writing the claim and reading the merged result back tells
   * this request whether it won; when another writer won, the decision is made again on the
   * winner's claim (a replay, a conflict or in progress).
   */
  async acquire(tenant: string, key: string, fingerprint: string, fresh: { messageId: string; acceptedAt: string }): Promise<Acquired> {
    const k = claimKey(tenant, key);
    const owner = randomUUID();
    let caughtUp = false;
    for (let round = 0; round < 4; round++) {
      const now = this.now();
      const decision = decideClaim(this.table.get(k), fingerprint, now);
      if (decision.kind === 'in-progress' && !caughtUp) {
        // This replica's view may lag the log by a fetch: the claim may be accepted by now.
        await this.table.catchUp();
        caughtUp = true;
        continue;
      }
      if (decision.kind !== 'claim' && decision.kind !== 'complete') return decision;
      const claim: IdempotencyClaim =
        decision.kind === 'claim'
          ? { ...fresh, owner, state: 'pending', fingerprint, claimedAt: now, leaseUntil: now + this.opts.leaseMs, expiresAt: now + this.opts.ttlMs }
          : { ...decision.claim, owner, claimedAt: now, leaseUntil: now + this.opts.leaseMs };
      const merged = await this.table.put(k, claim);
      caughtUp = true;
      if (merged?.owner === owner && merged.messageId === claim.messageId && merged.state === 'pending') {
        return { kind: 'proceed', claim: merged, completing: decision.kind === 'complete' };
      }
    }
    // Rounds lost to other writers: the key is contended right now.
    return { kind: 'in-progress', retryAfterMs: 1000 };
  }

  /** Records that the claim's message is durably on email.requested. */
  async markAccepted(tenant: string, key: string, claim: IdempotencyClaim): Promise<void> {
    await this.table.put(claimKey(tenant, key), { ...claim, state: 'accepted' });
  }
}
