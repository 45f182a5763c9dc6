/**
 * What the ingest process needs to serve the console, in one call from its `main.ts`: the live
 * event state and its reader of email.events, and the session sealing keys.
 */
import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import type { PostlineConfig } from '../../shared/config.js';
import type { ConsoleDeps } from './console-app.js';
import { feedbackSecrets, sessionKeysFrom } from './console-session.js';
import { LiveEvents } from './live-events.js';
import { startEventTail } from './event-tail.js';

export async function openConsole(
  o: { config: PostlineConfig; kafka: Kafka; logger: Logger } & Pick<ConsoleDeps, 'apiKeys' | 'directory' | 'templates' | 'suppressions' | 'deadLetters'>,
): Promise<{ deps: ConsoleDeps; stop(): Promise<void> }> {
  const { keys, random } = sessionKeysFrom(feedbackSecrets(o.config.feedback));
  if (random) o.logger.warn('console sessions are sealed with a random key of this process (no feedback.keys): they end when it restarts and work on this replica only');
  const live = new LiveEvents({ historyMinutes: o.config.console.historyMinutes });
  const tail = await startEventTail({ kafka: o.kafka, live, logger: o.logger, historyMinutes: o.config.console.historyMinutes });
  return {
    deps: { config: o.config.console, apiKeys: o.apiKeys, directory: o.directory, templates: o.templates, suppressions: o.suppressions, deadLetters: o.deadLetters, live, sessionKeys: keys, readApiUrl: o.config.ingest.readApiUrl },
    stop: () => tail.stop(),
  };
}
