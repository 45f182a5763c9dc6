/** Retry tiers and maximum ages, shared by the dispatcher (which plans retries) and the scheduler. */
import { Type } from '@sinclair/typebox';
import { section, int } from './schema-helpers.js';

const HOUR = 3600_000;

export const RetrySection = section(
  {
    delay1mMs: int(60_000, 'How long records wait in the 1m tier, email.retry.<priority>.1m (tests shorten the tiers here, never in code).', 0),
    delay5mMs: int(5 * 60_000, 'How long records wait in email.retry.<priority>.5m.', 0),
    delay15mMs: int(15 * 60_000, 'How long records wait in email.retry.<priority>.15m.', 0),
    delay1hMs: int(HOUR, 'How long records wait in email.retry.<priority>.1h (used for the 4th and every later attempt).', 0),
    maxAgeCriticalMs: int(HOUR, 'A critical message still undelivered this long after acceptance expires.', 0),
    maxAgeTransactionalMs: int(24 * HOUR, 'Maximum age of a transactional message.', 0),
    maxAgeBulkMs: int(72 * HOUR, 'Maximum age of a bulk message.', 0),
    maxGreylistWaitMs: int(HOUR, 'Longest "try again in N seconds" hint from a server that is honoured.', 0),
    schedulerConcurrency: Type.Integer({ default: 100, minimum: 1, description: 'Due retry records moved back to dispatch at once.' }),
  },
  'Retry tiers and expiry',
);
