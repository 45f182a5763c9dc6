/**
 * `email.suppressions` — the per-tenant suppression list, a compacted topic read into memory by
 * the stages that enforce or serve it. One record per (tenant, list, address), keyed by
 * `suppressionKey`; a null value (tombstone) removes the entry. An entry without `list` covers
 * every message of the tenant; one with `list` only that list's messages (an unsubscribe from a
 * newsletter does not stop password resets).
 */
import { Type, type Static } from '@sinclair/typebox';
import { contract } from './codec.js';
import { tenantScopedKey, parseTenantScopedKey } from '../tenant-keys.js';

export const SUPPRESSION_VERSION = 1;

export const SUPPRESSION_REASONS = ['hard-bounce', 'soft-bounce', 'complaint', 'unsubscribe', 'manual'] as const;
export type SuppressionReason = (typeof SUPPRESSION_REASONS)[number];

const NoControl = '^[^\\u0000-\\u001f\\u007f]+$';

export const SuppressionSchema = Type.Object(
  {
    schemaVersion: Type.Literal(SUPPRESSION_VERSION),
    tenant: Type.String({ minLength: 1, maxLength: 128, pattern: NoControl }),
    /** Lower-cased address. */
    address: Type.String({ minLength: 3, maxLength: 320, pattern: '^[^\\s@]+@[^\\s@]+$' }),
    /** Absent: every message of the tenant. Present: only messages naming this list. */
    list: Type.Optional(Type.String({ minLength: 1, maxLength: 128, pattern: NoControl })),
    reason: Type.Union(SUPPRESSION_REASONS.map((r) => Type.Literal(r))),
    /** The bounce category or feedback type that caused it (unknown-user, abuse, …). */
    category: Type.Optional(Type.String({ maxLength: 64 })),
    /** The event that caused it (absent for manual entries). */
    cause: Type.Optional(
      Type.Object(
        { eventId: Type.String(), messageId: Type.String(), type: Type.String(), via: Type.Optional(Type.String()) },
        { additionalProperties: false },
      ),
    ),
    /** A person's note (manual entries, imports). */
    note: Type.Optional(Type.String({ maxLength: 500 })),
    createdAt: Type.String({ format: 'date-time' }),
    /** After this the entry no longer applies (soft bounces); absent: until removed. */
    expiresAt: Type.Optional(Type.String({ format: 'date-time' })),
  },
  { additionalProperties: false },
);

export type Suppression = Static<typeof SuppressionSchema>;
export const SuppressionContract = contract('Suppression', SUPPRESSION_VERSION, SuppressionSchema);

/** The record key of (tenant, list, address): tenant-scoped, so `acme` and `acme/eu` never share one. */
export function suppressionKey(tenant: string, address: string, list?: string): string {
  return tenantScopedKey(tenant, `${list ?? ''}\u0000${address.toLowerCase()}`);
}

/** Splits a key built by `suppressionKey`; undefined for any other string. */
export function parseSuppressionKey(key: string): { tenant: string; address: string; list?: string } | undefined {
  const t = parseTenantScopedKey(key);
  if (!t) return undefined;
  const i = t.part.indexOf('\u0000');
  if (i < 0) return undefined;
  const list = t.part.slice(0, i);
  return { tenant: t.tenant, address: t.part.slice(i + 1), ...(list ? { list } : {}) };
}
