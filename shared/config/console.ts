/** The web console (`/console` on the send API's port, served by ingest). */
import { section, bool, int } from './schema-helpers.js';

export const ConsoleSection = section(
  {
    enabled: bool(true, 'Serve the web console at /console on the send API\'s port (sign-in with an API key). Every ingest replica serving it also reads email.events for the live overview.'),
    idleTimeoutMs: int(30 * 60_000, 'A console session ends after this long without a request (sign in again).', 60_000),
    absoluteTimeoutMs: int(12 * 3_600_000, 'A console session ends this long after sign-in, however active.', 60_000),
    historyMinutes: int(60, 'Minutes of email.events the console\'s overview reads back at start and keeps per-minute counts for.', 1),
  },
  'Console (web UI at /console; sessions are sealed with a key derived from feedback.keys, or a per-process random key without them)',
);
