/**
 * Scheduled send (`sendAt`) and cancellation (`DELETE /v1/emails/:id`): how far ahead a message
 * may be scheduled, how much of the schedule the scheduler holds in memory, and where ingest
 * finds the scheduler's cancellation API.
 */
import { section, int, str } from './schema-helpers.js';

const DAY = 24 * 3600_000;

export const ScheduleSection = section(
  {
    maxAheadMs: int(30 * DAY, 'Latest sendAt accepted, counted from acceptance (ingest refuses later ones with 400; the renderer dead-letters a foreign producer’s).', 1000),
    immediateWithinMs: int(1000, 'A sendAt in the past or at most this far ahead is sent at once, not scheduled.', 0),
    horizonMs: int(
      60_000,
      'The scheduler holds the bodies of scheduled requests due within this window; later ones are kept as a small index entry and their bodies re-read from email.scheduled when they come within it.',
      1000,
    ),
    groupId: str('postline-scheduler-scheduled', 'Consumer group of the scheduler on email.scheduled.'),
    host: str('0.0.0.0', 'Interface of the scheduler’s cancellation API (internal: ingest forwards DELETE /v1/emails/:id there).'),
    port: int(0, 'Port of the scheduler’s cancellation API; 0: any free port (npm start picks one and tells ingest; Kubernetes sets 8085).', 0),
    schedulerUrl: str(
      '',
      'Base URL of the scheduler’s cancellation API as ingest reaches it (e.g. http://scheduler:8085). Empty: DELETE /v1/emails/:id answers 503.',
    ),
    cancelTimeoutMs: int(5000, 'Longest ingest waits for the scheduler (and the read API) to answer a cancellation before 503.', 100),
  },
  'Scheduled send and cancellation',
);
