/**
 * The API keys `postline start` gives the ingest stage: the user's own (POSTLINE_INGEST_API_KEYS
 * or `ingest.apiKeys` in POSTLINE_CONFIG) and the demo key, side by side, so starting the demo
 * never locks out a key that already works.
 */
import type { ApiKey } from '../ingest/api-keys.js';
import { hashApiKey } from '../ingest/api-keys.js';

export const DEMO_TENANT = 'demo';

/**
 * The user's keys followed by the demo key (once, even if the user already listed it), which may
 * send and read, and, when given, the admin key: scope admin only (tenants, keys and sender
 * domains by `/v1/admin` and `postline tenants|keys|domains`), so it cannot be mistaken for a
 * sending key.
 */
export function launcherApiKeys(userKeys: readonly ApiKey[], demoKey: string, adminKey?: string): ApiKey[] {
  const demo: ApiKey = { tenant: DEMO_TENANT, keyHash: hashApiKey(demoKey) };
  const admin: ApiKey[] = adminKey ? [{ tenant: DEMO_TENANT, keyHash: hashApiKey(adminKey), scopes: ['admin'] }] : [];
  return [...userKeys, ...(userKeys.some((k) => k.keyHash === demo.keyHash) ? [] : [demo]), ...admin.filter((a) => !userKeys.some((k) => k.keyHash === a.keyHash))];
}
