/**
 * API keys, shared by every API a tenant calls (the send API, the read API): tenants
 * authenticate with `Authorization: Bearer <key>`. Only a SHA-256 digest of
 * each key is configured (keys are long random strings, so an unsalted fast hash is enough —
 * the same choice GitHub and Stripe make for tokens), and a presented key is compared with
 * every configured digest in constant time so response timing reveals nothing about them.
 */
import fs from 'node:fs';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { Type } from '@sinclair/typebox';
import { ApiKeyEntry } from '../config/ingest.js';
import { ConfigError } from '../config-loader.js';

export interface ApiKey {
  tenant: string;
  keyHash: string;
}

const PREFIX = 'sha256:';

/** The configured form of a key: `sha256:<hex>`. Usable from a CLI: `hashApiKey(process.argv[2])`. */
export function hashApiKey(key: string): string {
  return PREFIX + createHash('sha256').update(key, 'utf8').digest('hex');
}

/** A new random key (256 bits, URL-safe), e.g. for `npm start`'s demo tenant. */
export function generateApiKey(): string {
  return `pl_${randomBytes(32).toString('base64url')}`;
}

export class ApiKeyStore {
  private readonly entries: Array<{ tenant: string; digest: Buffer }>;

  constructor(keys: ApiKey[]) {
    this.entries = keys.map((k) => ({ tenant: k.tenant, digest: Buffer.from(k.keyHash.slice(PREFIX.length), 'hex') }));
  }

  get size(): number {
    return this.entries.length;
  }

  /**
   * The tenant owning `key`, or undefined. Every entry is compared (no early exit) over
   * fixed-length digests, so the time taken does not depend on which entry, if any, matched.
   */
  authenticate(key: string): string | undefined {
    const digest = createHash('sha256').update(key, 'utf8').digest();
    let tenant: string | undefined;
    for (const e of this.entries) {
      if (timingSafeEqual(digest, e.digest) && tenant === undefined) tenant = e.tenant;
    }
    return tenant;
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

/** The keys of `ingest.apiKeys` plus those of `ingest.apiKeysFile`; throws ConfigError when the file is bad. */
export function loadApiKeyStore(config: { apiKeys: ApiKey[]; apiKeysFile: string }): ApiKeyStore {
  return new ApiKeyStore([...config.apiKeys, ...(config.apiKeysFile ? readApiKeysFile(config.apiKeysFile) : [])]);
}
