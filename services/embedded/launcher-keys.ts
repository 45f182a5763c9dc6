/**
 * The API keys `postline start` gives the ingest stage: the user's own (POSTLINE_INGEST_API_KEYS
 * or `ingest.apiKeys` in POSTLINE_CONFIG) and the demo key, side by side, so starting the demo
 * never locks out a key that already works.
 */
import type { ApiKey } from '../ingest/api-keys.js';
import { hashApiKey } from '../ingest/api-keys.js';

export const DEMO_TENANT = 'demo';

/** The user's keys followed by the demo key (once, even if the user already listed it). */
export function launcherApiKeys(userKeys: readonly ApiKey[], demoKey: string): ApiKey[] {
  const demo: ApiKey = { tenant: DEMO_TENANT, keyHash: hashApiKey(demoKey) };
  return [...userKeys, ...(userKeys.some((k) => k.keyHash === demo.keyHash) ? [] : [demo])];
}
