/**
 * The pure rules of `Idempotency-Key` (see README "Idempotency"). A claim is one record on
 * the compacted `email.idempotency` topic, keyed `tenant \0 key`. Every replica applies the
 * claims it reads in log order with `mergeClaims`, which depends only on the records — never
 * on a local clock or config — so every replica, and every restart, agrees on the winner.
 */
import { createHash } from 'node:crypto';
import stringify from 'safe-stable-stringify';
import type { EmailRequested } from '../../shared/contracts/email-requested.js';
import { tenantScopedKey } from '../../shared/tenant-keys.js';

export interface IdempotencyClaim {
  /** The message id every request with this key is answered with. */
  messageId: string;
  /** The request that wrote this claim; tells a writer whether its claim won. */
  owner: string;
  /** pending: claimed, not yet known to be on email.requested; accepted: it is. */
  state: 'pending' | 'accepted';
  /** SHA-256 of the request, without its id and time; the same key with another body is refused. */
  fingerprint: string;
  /** The acceptedAt of the EmailRequested (kept, so completing a claim reproduces the same record). */
  acceptedAt: string;
  /** Epoch ms this claim (or its take-over) was written. */
  claimedAt: number;
  /** A pending claim is in progress until then; after that a retry may complete it. */
  leaseUntil: number;
  /** After this the key is free again. */
  expiresAt: number;
}

/** The `email.idempotency` key of a tenant's Idempotency-Key (the shared tenant-scoped scheme). */
export function claimKey(tenant: string, key: string): string {
  return tenantScopedKey(tenant, key);
}

/** What a request body means for idempotency: the record without its per-request fields. */
export function requestFingerprint(record: EmailRequested): string {
  const { messageId: _id, acceptedAt: _at, idempotencyKey: _key, ...rest } = record;
  return createHash('sha256').update(stringify(rest) ?? '').digest('hex');
}

/**
 * The claim that stands after `next` is read following `prev` in log order:
 * - nothing before, or the earlier claim expired → `next`;
 * - another message id → the earlier claim (first writer wins);
 * - the same message id → `accepted` is final; a pending claim is taken over only by a
 *   different owner once its lease ran out, or renewed by its own owner.
 */
export function mergeClaims(prev: IdempotencyClaim | undefined, next: IdempotencyClaim): IdempotencyClaim {
  if (!prev || next.claimedAt >= prev.expiresAt) return next;
  if (next.messageId !== prev.messageId) return prev;
  if (prev.state === 'accepted') return prev;
  if (next.state === 'accepted') return next;
  if (next.owner === prev.owner || next.claimedAt >= prev.leaseUntil) return next;
  return prev;
}

export type ClaimDecision =
  /** No live claim: write a new one. */
  | { kind: 'claim' }
  /** Already accepted: answer with its id, send nothing. */
  | { kind: 'replay'; messageId: string }
  /** Same key, different request: refuse (422). */
  | { kind: 'conflict' }
  /** Another request holds the claim and may still produce: refuse for now (409). */
  | { kind: 'in-progress'; retryAfterMs: number }
  /** A pending claim whose lease ran out (its request failed or its replica died): finish it. */
  | { kind: 'complete'; claim: IdempotencyClaim };

/** What a request with `fingerprint` does given the claim it found (`now` in epoch ms). */
export function decideClaim(existing: IdempotencyClaim | undefined, fingerprint: string, now: number): ClaimDecision {
  if (!existing || now >= existing.expiresAt) return { kind: 'claim' };
  if (existing.fingerprint !== fingerprint) return { kind: 'conflict' };
  if (existing.state === 'accepted') return { kind: 'replay', messageId: existing.messageId };
  if (now < existing.leaseUntil) return { kind: 'in-progress', retryAfterMs: existing.leaseUntil - now };
  return { kind: 'complete', claim: existing };
}
