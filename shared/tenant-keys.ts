/**
 * Keys of tenant-scoped stores (compacted topics, in-memory tables). A tenant name may contain
 * almost anything, `/` included (`acme/eu` is a tenant of its own, not a part of `acme`), so a
 * key joins the tenant and the tenant's own part with NUL: no tenant can contain it (API-key
 * config and every contract refuse control characters), which makes the split unambiguous and
 * no two (tenant, part) pairs produce one key. Every tenant-keyed store builds its keys here.
 */

/** The separator; never part of a tenant name. */
export const TENANT_KEY_SEPARATOR = '\u0000';

/** The store key of `part` (a template name, an Idempotency-Key, ...) owned by `tenant`. */
export function tenantScopedKey(tenant: string, part: string): string {
  // A tenant with NUL would make two pairs share a key; the config and contracts already refuse it.
  if (tenant.length === 0 || tenant.includes(TENANT_KEY_SEPARATOR)) throw new TypeError('a tenant name is non-empty and never contains NUL');
  return `${tenant}${TENANT_KEY_SEPARATOR}${part}`;
}

/** Splits a key built by `tenantScopedKey`; undefined for any other string. */
export function parseTenantScopedKey(key: string): { tenant: string; part: string } | undefined {
  const i = key.indexOf(TENANT_KEY_SEPARATOR);
  if (i <= 0) return undefined;
  return { tenant: key.slice(0, i), part: key.slice(i + 1) };
}
