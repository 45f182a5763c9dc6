/**
 * `email.admin` — administration state on one compacted topic, read whole into memory by every
 * stage that authenticates (ingest, analytics' read API) or checks sender domains (ingest, the
 * renderer). Four kinds of record, each under its own key (see `adminKey`):
 *
 * - `tenant`: a tenant created by an administrator;
 * - `key`: an API key — id, tenant, name, scopes, created time and the SHA-256 digest of the
 *   key only (the key itself is shown once, at creation); revoking rewrites it with `revokedAt`;
 * - `used`: when a key was last used (a record of its own, written at most once a minute per key,
 *   so a busy key never rewrites its key record);
 * - `domain`: a sender domain a tenant may use in `from`; a tombstone removes it.
 */
import { Type, type Static } from '@sinclair/typebox';
import { contract } from './codec.js';
import { TENANT_KEY_SEPARATOR, parseTenantScopedKey, tenantScopedKey } from '../tenant-keys.js';

export const ADMIN_RECORD_VERSION = 1;

export const API_SCOPES = ['send', 'read', 'admin'] as const;
export type ApiScope = (typeof API_SCOPES)[number];

const NoControl = '^[^\\u0000-\\u001f\\u007f]+$';
export const TenantName = Type.String({ minLength: 1, maxLength: 128, pattern: NoControl });
/** A key id: 16 lower-case hex characters (64 random bits), the part of a key that finds its record. */
export const KEY_ID_PATTERN = '^[0-9a-f]{16}$';
export const ScopesSchema = Type.Array(Type.Union(API_SCOPES.map((s) => Type.Literal(s))), { minItems: 1, maxItems: API_SCOPES.length, uniqueItems: true });
/** A domain (IDNA ASCII, lower case) or `*.domain` for its subdomains. */
export const SenderDomainSchema = Type.String({ minLength: 1, maxLength: 255, pattern: '^(\\*\\.)?[a-z0-9_-]+(\\.[a-z0-9_-]+)*\\.?$' });

export const TenantRecordSchema = Type.Object(
  { schemaVersion: Type.Literal(ADMIN_RECORD_VERSION), kind: Type.Literal('tenant'), name: TenantName, createdAt: Type.String({ format: 'date-time' }) },
  { additionalProperties: false },
);

export const KeyRecordSchema = Type.Object(
  {
    schemaVersion: Type.Literal(ADMIN_RECORD_VERSION),
    kind: Type.Literal('key'),
    id: Type.String({ pattern: KEY_ID_PATTERN }),
    tenant: TenantName,
    name: Type.String({ minLength: 1, maxLength: 128, pattern: NoControl }),
    scopes: ScopesSchema,
    createdAt: Type.String({ format: 'date-time' }),
    /** `sha256:<hex>` of the whole key. */
    keyHash: Type.String({ pattern: '^sha256:[0-9a-f]{64}$' }),
    revokedAt: Type.Optional(Type.String({ format: 'date-time' })),
  },
  { additionalProperties: false },
);

export const UsedRecordSchema = Type.Object(
  { schemaVersion: Type.Literal(ADMIN_RECORD_VERSION), kind: Type.Literal('used'), id: Type.String({ pattern: KEY_ID_PATTERN }), lastUsedAt: Type.String({ format: 'date-time' }) },
  { additionalProperties: false },
);

export const DomainRecordSchema = Type.Object(
  { schemaVersion: Type.Literal(ADMIN_RECORD_VERSION), kind: Type.Literal('domain'), tenant: TenantName, domain: SenderDomainSchema, createdAt: Type.String({ format: 'date-time' }) },
  { additionalProperties: false },
);

export const AdminRecordSchema = Type.Union([TenantRecordSchema, KeyRecordSchema, UsedRecordSchema, DomainRecordSchema]);

export type TenantRecord = Static<typeof TenantRecordSchema>;
export type KeyRecord = Static<typeof KeyRecordSchema>;
export type UsedRecord = Static<typeof UsedRecordSchema>;
export type DomainRecord = Static<typeof DomainRecordSchema>;
export type AdminRecord = Static<typeof AdminRecordSchema>;

export const AdminRecordContract = contract('AdminRecord', ADMIN_RECORD_VERSION, AdminRecordSchema);

/**
 * The record key of each kind: `<kind>` NUL `<rest>`. Domains are tenant-scoped
 * (`domain` NUL tenant NUL domain) so `acme` and `acme/eu` never share a key; tenants, keys and
 * last-used records are unique by themselves (a tenant name, a random key id).
 */
export const adminKey = {
  tenant: (name: string) => `tenant${TENANT_KEY_SEPARATOR}${name}`,
  key: (id: string) => `key${TENANT_KEY_SEPARATOR}${id}`,
  used: (id: string) => `used${TENANT_KEY_SEPARATOR}${id}`,
  domain: (tenant: string, domain: string) => `domain${TENANT_KEY_SEPARATOR}${tenantScopedKey(tenant, domain)}`,
};

/** Splits an admin record key into its kind and parts; undefined for any other string. */
export function parseAdminKey(key: string): { kind: 'tenant' | 'key' | 'used'; id: string } | { kind: 'domain'; tenant: string; domain: string } | undefined {
  const i = key.indexOf(TENANT_KEY_SEPARATOR);
  if (i <= 0) return undefined;
  const kind = key.slice(0, i);
  const rest = key.slice(i + 1);
  if (kind === 'domain') {
    const t = parseTenantScopedKey(rest);
    return t ? { kind, tenant: t.tenant, domain: t.part } : undefined;
  }
  return kind === 'tenant' || kind === 'key' || kind === 'used' ? { kind, id: rest } : undefined;
}
