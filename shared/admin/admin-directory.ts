/**
 * Tenants, API keys, their last use and sender domains: the in-memory view of `email.admin`
 * (see shared/contracts/admin-record.ts) and the writes administrators make to it. Every
 * replica of every stage that authenticates keeps one, fed by a CompactedTable
 * (`openAdminDirectory`), so a change made through any replica is seen by all of them as soon
 * as the table reads it — a revoked key is refused everywhere without a restart.
 *
 * A new key is `pl_<id>_<secret>`: the 16-hex-character id finds its record (one digest is
 * computed and compared per request, whatever the number of keys), the 256-bit secret makes it
 * unguessable. Only `sha256:` of the whole key is stored: a 256-bit random secret cannot be
 * brute-forced, so a slow hash (scrypt, argon2) would only add CPU to every request.
 */
import { randomBytes } from 'node:crypto';
import { domainToASCII } from 'node:url';
import { PermanentError, ValidationError } from '../errors.js';
import { hashApiKey } from '../http/api-keys.js';
import {
  ADMIN_RECORD_VERSION,
  AdminRecordContract,
  adminKey,
  parseAdminKey,
  type AdminRecord,
  type ApiScope,
  type DomainRecord,
  type KeyRecord,
  type TenantRecord,
} from '../contracts/admin-record.js';

/** The part of a CompactedTable the directory writes through (an in-memory store serves in unit tests). */
export interface AdminStore {
  put(key: string, value: AdminRecord | null): Promise<unknown>;
  /** Resolves once every write made before the call is visible here. */
  catchUp(): Promise<void>;
}

/** A key as administrators see it: its record and when it was last used; never the key itself. */
export interface KeyView {
  id: string;
  tenant: string;
  name: string;
  scopes: ApiScope[];
  createdAt: string;
  lastUsedAt?: string;
  revokedAt?: string;
}

export interface AdminDirectoryOptions {
  now?: () => Date;
  /** Least time between two last-used writes for one key (default one minute). */
  lastUsedIntervalMs?: number;
}

/** A domain as stored: IDNA ASCII, lower case, `*.` kept; ValidationError when it is not one. */
export function normalizeSenderDomain(input: string): string {
  const raw = input.trim().toLowerCase().replace(/\.$/, '');
  const wildcard = raw.startsWith('*.');
  const ascii = domainToASCII(wildcard ? raw.slice(2) : raw);
  if (!ascii || !/^[a-z0-9_-]+(\.[a-z0-9_-]+)+$/.test(ascii) || ascii.length > 253) {
    throw new ValidationError([{ path: 'domain', message: `"${input}" is not a domain name (example.com, or *.example.com for its subdomains)` }]);
  }
  return wildcard ? `*.${ascii}` : ascii;
}

export class AdminDirectory {
  private readonly tenants = new Map<string, TenantRecord>();
  private readonly keys = new Map<string, KeyRecord>();
  private readonly used = new Map<string, string>();
  private readonly domains = new Map<string, Map<string, DomainRecord>>();
  /** When this replica last wrote (or saw) a key's last-used time, by key id. */
  private readonly usedWritten = new Map<string, number>();
  private readonly now: () => Date;
  private readonly lastUsedIntervalMs: number;
  /** Last-used writes that failed (logged by the caller through `onUsedWriteError`). */
  onUsedWriteError?: (err: unknown, keyId: string) => void;

  constructor(
    private readonly store: AdminStore,
    opts: AdminDirectoryOptions = {},
  ) {
    this.now = opts.now ?? (() => new Date());
    this.lastUsedIntervalMs = opts.lastUsedIntervalMs ?? 60_000;
  }

  /** Applies one record of the topic (null: a tombstone); the table calls it for every change. */
  apply(key: string, value: AdminRecord | undefined): void {
    const k = parseAdminKey(key);
    if (!k) return;
    if (k.kind === 'domain') {
      const mine = this.domains.get(k.tenant);
      if (value?.kind === 'domain' && value.tenant === k.tenant && value.domain === k.domain) {
        if (mine) mine.set(k.domain, value);
        else this.domains.set(k.tenant, new Map([[k.domain, value]]));
      } else if (mine) {
        mine.delete(k.domain);
        if (mine.size === 0) this.domains.delete(k.tenant);
      }
      return;
    }
    // A record must name itself as its key does; anything else is ignored.
    if (k.kind === 'tenant') setOrDelete(this.tenants, k.id, value?.kind === 'tenant' && value.name === k.id ? value : undefined);
    else if (k.kind === 'key') setOrDelete(this.keys, k.id, value?.kind === 'key' && value.id === k.id ? value : undefined);
    else if (value?.kind === 'used' && value.id === k.id) this.used.set(k.id, value.lastUsedAt);
    else this.used.delete(k.id);
  }

  // --- tenants ---

  hasTenant(name: string): boolean {
    return this.tenants.has(name);
  }

  listTenants(): TenantRecord[] {
    return [...this.tenants.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Creates a tenant; PermanentError CONFLICT when it exists. */
  async createTenant(name: string): Promise<TenantRecord> {
    await this.store.catchUp();
    if (this.tenants.has(name)) throw new PermanentError('CONFLICT', `tenant "${name}" exists`);
    const record: TenantRecord = { schemaVersion: ADMIN_RECORD_VERSION, kind: 'tenant', name, createdAt: this.now().toISOString() };
    await this.write(adminKey.tenant(name), record);
    return record;
  }

  // --- keys ---

  /** The record of a key id (revoked or not), or undefined. */
  keyRecord(id: string): KeyRecord | undefined {
    return this.keys.get(id);
  }

  view(id: string): KeyView | undefined {
    const r = this.keys.get(id);
    if (!r) return undefined;
    const lastUsedAt = this.used.get(id);
    return { id: r.id, tenant: r.tenant, name: r.name, scopes: [...r.scopes], createdAt: r.createdAt, ...(lastUsedAt ? { lastUsedAt } : {}), ...(r.revokedAt ? { revokedAt: r.revokedAt } : {}) };
  }

  /** Keys of `tenant` (exactly that tenant), or of every tenant; newest first. */
  listKeys(tenant?: string): KeyView[] {
    const out: KeyView[] = [];
    for (const r of this.keys.values()) if (tenant === undefined || r.tenant === tenant) out.push(this.view(r.id)!);
    return out.sort((a, b) => b.createdAt.localeCompare(a.createdAt) || a.id.localeCompare(b.id));
  }

  liveKeyCount(): number {
    let n = 0;
    for (const r of this.keys.values()) if (!r.revokedAt) n++;
    return n;
  }

  /** Live (not revoked) keys per tenant and scope, for metrics. */
  liveKeyCounts(): Map<string, Map<ApiScope, number>> {
    const out = new Map<string, Map<ApiScope, number>>();
    for (const r of this.keys.values()) {
      if (r.revokedAt) continue;
      const t = out.get(r.tenant) ?? new Map<ApiScope, number>();
      for (const s of r.scopes) t.set(s, (t.get(s) ?? 0) + 1);
      out.set(r.tenant, t);
    }
    return out;
  }

  /**
   * Creates a key: resolves with its view and the key itself, which exists nowhere else —
   * the caller shows it once and forgets it.
   */
  async createKey(input: { tenant: string; name: string; scopes: ApiScope[] }): Promise<{ view: KeyView; key: string }> {
    const id = randomBytes(8).toString('hex');
    const key = `pl_${id}_${randomBytes(32).toString('base64url')}`;
    const record: KeyRecord = {
      schemaVersion: ADMIN_RECORD_VERSION,
      kind: 'key',
      id,
      tenant: input.tenant,
      name: input.name,
      scopes: [...new Set(input.scopes)],
      createdAt: this.now().toISOString(),
      keyHash: hashApiKey(key),
    };
    await this.write(adminKey.key(id), record);
    return { view: this.view(id)!, key };
  }

  /** Revokes a key (kept, marked revoked); resolves with its view, undefined when there is no such key. */
  async revokeKey(id: string): Promise<KeyView | undefined> {
    await this.store.catchUp();
    const r = this.keys.get(id);
    if (!r) return undefined;
    if (!r.revokedAt) await this.write(adminKey.key(id), { ...r, revokedAt: this.now().toISOString() });
    return this.view(id);
  }

  /**
   * Notes that a key was used now. Written at most once per `lastUsedIntervalMs` per key (by
   * this replica, and not when another replica's write within the interval was already read),
   * in the background: a request never waits for it.
   */
  noteUsed(id: string): void {
    const now = this.now().getTime();
    const seen = Math.max(this.usedWritten.get(id) ?? -Infinity, Date.parse(this.used.get(id) ?? '') || -Infinity);
    if (now - seen < this.lastUsedIntervalMs) return;
    this.usedWritten.set(id, now);
    const record: AdminRecord = { schemaVersion: ADMIN_RECORD_VERSION, kind: 'used', id, lastUsedAt: new Date(now).toISOString() };
    this.store.put(adminKey.used(id), record).catch((err: unknown) => {
      // Try again on the next use.
      this.usedWritten.delete(id);
      this.onUsedWriteError?.(err, id);
    });
  }

  // --- sender domains ---

  /** The domains added for `tenant` (exactly that tenant), sorted; undefined when none. */
  domainsOf(tenant: string): string[] | undefined {
    const mine = this.domains.get(tenant);
    return mine ? [...mine.keys()].sort() : undefined;
  }

  listDomains(tenant?: string): DomainRecord[] {
    const out: DomainRecord[] = [];
    for (const [t, mine] of this.domains) if (tenant === undefined || t === tenant) out.push(...mine.values());
    return out.sort((a, b) => a.tenant.localeCompare(b.tenant) || a.domain.localeCompare(b.domain));
  }

  /** Adds a sender domain (normalized; adding one twice keeps the first record). */
  async addDomain(tenant: string, domain: string): Promise<DomainRecord> {
    const d = normalizeSenderDomain(domain);
    await this.store.catchUp();
    const existing = this.domains.get(tenant)?.get(d);
    if (existing) return existing;
    const record: DomainRecord = { schemaVersion: ADMIN_RECORD_VERSION, kind: 'domain', tenant, domain: d, createdAt: this.now().toISOString() };
    await this.write(adminKey.domain(tenant, d), record);
    return record;
  }

  /** Removes a sender domain; resolves false when the tenant had no such domain. */
  async removeDomain(tenant: string, domain: string): Promise<boolean> {
    const d = normalizeSenderDomain(domain);
    await this.store.catchUp();
    if (!this.domains.get(tenant)?.has(d)) return false;
    await this.write(adminKey.domain(tenant, d), null);
    return true;
  }

  private async write(key: string, value: AdminRecord | null): Promise<void> {
    if (value) {
      const issues = AdminRecordContract.check(value);
      if (issues.length > 0) throw new ValidationError(issues);
    }
    await this.store.put(key, value);
  }
}

function setOrDelete<V>(map: Map<string, V>, key: string, value: V | undefined): void {
  if (value === undefined) map.delete(key);
  else map.set(key, value);
}
