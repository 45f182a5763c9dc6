/**
 * The suppression list (`email.suppressions`): who feeds it from events, who enforces it, and
 * how long a soft bounce keeps an address off the list.
 */
import { section, bool, int, str } from './schema-helpers.js';

export const SuppressionsSection = section(
  {
    feeder: bool(
      true,
      'Run the suppression feeder in the dispatcher process: it reads email.events and writes recipient-class bounces, complaints and unsubscribes to email.suppressions. One group for all replicas.',
    ),
    feederGroupId: str('postline-suppression-feeder', 'Consumer group of the suppression feeder on email.events.'),
    enforce: bool(true, 'Check every recipient against the suppression list before any SMTP (dispatcher): a suppressed recipient gets a suppressed event and is not sent to.'),
    softBounceDays: int(7, 'Days a soft bounce (mailbox-full) keeps an address suppressed; hard bounces, complaints and unsubscribes last until removed.', 1),
    loadTimeoutMs: int(120_000, 'Longest the dispatcher waits at start for the suppression list to be read to its end before it fails to start.', 1000),
  },
  'Suppression list (feeder, enforcement, soft-bounce expiry)',
);
