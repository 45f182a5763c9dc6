/** Administration (`email.admin`): tenants, API keys and sender domains managed by API and CLI. */
import { section, int } from './schema-helpers.js';

export const AdminSection = section(
  {
    lastUsedIntervalMs: int(60_000, 'Least time between two writes of an API key\'s last-used time to email.admin (per key and replica): a busy key costs one record a minute, not one per request.', 1000),
    loadTimeoutMs: int(30_000, 'Longest a stage that authenticates (ingest, analytics, the renderer for sender domains) waits at start for email.admin to be read to its end before it fails to start.', 1000),
  },
  'Administration (tenants, API keys, sender domains on email.admin)',
);
