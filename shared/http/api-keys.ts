/**
 * API keys, shared by every API a tenant calls (the send API, the read API): tenants
 * authenticate with `Authorization: Bearer <key>`. Two sources of keys:
 *
 * - bootstrap keys from configuration (`ingest.apiKeys`, `ingest.apiKeysFile`): only a SHA-256
 *   digest of each is configured (keys are long random strings, so an unsalted fast hash is
 *   enough — the same choice GitHub and Stripe make for tokens), and a presented key is
 *   compared with every configured digest in constant time so response timing reveals nothing
 *   about them. Their scopes are `send` and `read` unless the entry names its own (`admin`
 *   only when configured so);
 * - keys created by administrators (`/v1/admin/keys`, `postline keys create`), read live from
 *   `email.admin` through a `KeyDirectory`: a key `pl_<id>_<secret>` is found by its id, so one
 *   digest is compared (in constant time) whatever the number of keys; a revoked key is refused
 *   as soon as this replica has read the revocation.
 *
 * `authenticate(token)` answers which tenant owns a key (any scope); `identify` adds the scopes,
 * and `authorize(token, scope)` the tenant only when the key has that scope. Failures are
 * emitted as `'auth-failure'` (reason, scope?) for metrics; nothing here logs or keeps a key.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { Type } from '@sinclair/typebox';
import { ApiKeyEntry } from '../config/ingest.js';
import { ConfigError } from '../config-loader.js';
import type { ApiScope } from '../contracts/admin-record.js';

export type { ApiScope } from '../contracts/admin-record.js';

export interface ApiKey {
  tenant: string;
  keyHash: string;
  /** Default: send and read (BOOTSTRAP_SCOPES). */
  scopes?: ApiScope[];
}

/** What a bootstrap key without its own `scopes` may do. */
export const BOOTSTRAP_SCOPES: readonly ApiScope[] = ['send', 'read'];

/** Who is asking: the key's tenant, its scopes, and its id when it is an administered key. */
export interface Identity {
  tenant: string;
  scopes: readonly ApiScope[];
  keyId?: string;
}

/** Why a request was not authenticated or authorized (the label of the auth-failure metric). */
export type AuthFailureReason = 'missing' | 'unknown' | 'revoked' | 'scope';

/** The administered keys, as ApiKeyStore needs them (`AdminDirectory` implements it). */
export interface KeyDirectory {
  keyRecord(id: string): { tenant: string; scopes: readonly ApiScope[]; keyHash: string; revokedAt?: string } | undefined;
  /** Called on every successful use of an administered key (the directory writes at most once a minute). */
  noteUsed(id: string): void;
  /** Live administered keys. */
  liveKeyCount(): number;
}

const PREFIX = 'sha256:';
const ADMINISTERED_KEY = /^pl_([0-9a-f]{16})_[A-Za-z0-9_-]{43}$/;

/** The id of an administered key (`pl_<id>_<secret>`), or undefined (bootstrap keys have none). */
export function keyIdOf(key: string): string | undefined {
  return ADMINISTERED_KEY.exec(key)?.[1];
}

/** The configured form of a key: `sha256:<hex>`. Usable from a CLI: `hashApiKey(process.argv[2])`. */
export function hashApiKey(key: string): string {
  return PREFIX + createHash('sha256').update(key, 'utf8').digest('hex');
}

/** A new random key (256 bits, URL-safe), e.g. for `npm start`'s demo tenant. */
export function generateApiKey(): string {
  return `pl_${randomBytes(32).toString('base64url')}`;
}

export class ApiKeyStore extends EventEmitter {
  private readonly entries: Array<{ tenant: string; digest: Buffer; scopes: readonly ApiScope[] }>;

  constructor(
    keys: ApiKey[],
    private readonly directory?: KeyDirectory,
  ) {
    super();
    this.entries = keys.map((k) => ({ tenant: k.tenant, digest: Buffer.from(k.keyHash.slice(PREFIX.length), 'hex'), scopes: k.scopes ?? BOOTSTRAP_SCOPES }));
  }

  /** Bootstrap keys plus live administered keys. */
  get size(): number {
    return this.entries.length + (this.directory?.liveKeyCount() ?? 0);
  }

  /** The tenants of the bootstrap keys (they exist without a tenant record). */
  bootstrapTenants(): Set<string> {
    return new Set(this.entries.map((e) => e.tenant));
  }

  /**
   * The tenant owning `key`, or undefined. Bootstrap entries are all compared (no early exit)
   * over fixed-length digests, so the time taken does not depend on which entry, if any, matched.
   */
  authenticate(key: string): string | undefined {
    return this.identify(key)?.tenant;
  }

  /** The tenant of `key` when the key has `scope`, else undefined (with an auth-failure event). */
  authorize(key: string, scope: ApiScope): string | undefined {
    const who = this.identify(key);
    return who && this.permits(who, scope) ? who.tenant : undefined;
  }

  /** Whether `who` has `scope`; emits an auth-failure ('scope') when not. */
  permits(who: Identity, scope: ApiScope): boolean {
    if (who.scopes.includes(scope)) return true;
    this.emit('auth-failure', 'scope' satisfies AuthFailureReason, scope);
    return false;
  }

  /** Who `key` is (tenant, scopes, id), or undefined — emitting 'auth-failure' with the reason. */
  identify(key: string): Identity | undefined {
    if (!key) {
      this.emit('auth-failure', 'missing' satisfies AuthFailureReason);
      return undefined;
    }
    const digest = createHash('sha256').update(key, 'utf8').digest();
    const id = keyIdOf(key);
    const record = id !== undefined ? this.directory?.keyRecord(id) : undefined;
    if (record && id !== undefined) {
      if (!timingSafeEqual(digest, Buffer.from(record.keyHash.slice(PREFIX.length), 'hex'))) {
        this.emit('auth-failure', 'unknown' satisfies AuthFailureReason);
        return undefined;
      }
      if (record.revokedAt) {
        this.emit('auth-failure', 'revoked' satisfies AuthFailureReason);
        return undefined;
      }
      this.directory!.noteUsed(id);
      return { tenant: record.tenant, scopes: record.scopes, keyId: id };
    }
    let found: Identity | undefined;
    for (const e of this.entries) {
      if (timingSafeEqual(digest, e.digest) && found === undefined) found = { tenant: e.tenant, scopes: e.scopes };
    }
    if (!found) this.emit('auth-failure', 'unknown' satisfies AuthFailureReason);
    return found;
  }
}

/** The key in an `Authorization: Bearer <key>` header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^Bearer[ \t]+([^\s]+)[ \t]*$/i.exec(header ?? '');
  return m?.[1];
}

const KeyFile = TypeCompiler.Compile(Type.Array(ApiKeyEntry));

/** Reads the keys file (same form as `ingest.apiKeys`); throws ConfigError naming what is wrong. */
export function readApiKeysFile(file: string, read: (f: string) => string = (f) => fs.readFileSync(f, 'utf8')): ApiKey[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(read(file));
  } catch (err) {
    throw new ConfigError([`ingest.apiKeysFile (${file}): ${(err as Error).message}`]);
  }
  if (!KeyFile.Check(parsed)) {
    throw new ConfigError([...KeyFile.Errors(parsed)].slice(0, 10).map((e) => `ingest.apiKeysFile (${file}) ${e.path || '/'}: ${e.message}`));
  }
  return parsed;
}

/** The bootstrap keys: those of `ingest.apiKeys` plus those of `ingest.apiKeysFile`; throws ConfigError when the file is bad. */
export function bootstrapApiKeys(config: { apiKeys: ApiKey[]; apiKeysFile: string }): ApiKey[] {
  return [...config.apiKeys, ...(config.apiKeysFile ? readApiKeysFile(config.apiKeysFile) : [])];
}

/** The bootstrap keys (and administered ones through `directory`); throws ConfigError when the file is bad. */
export function loadApiKeyStore(config: { apiKeys: ApiKey[]; apiKeysFile: string }, directory?: KeyDirectory): ApiKeyStore {
  return new ApiKeyStore(bootstrapApiKeys(config), directory);
}
