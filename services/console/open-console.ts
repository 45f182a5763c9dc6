/**
 * What the ingest process needs to serve the console, in one call from its `main.ts`: the live
 * event state, the pools and sites state, their reader of email.events, and the session sealing keys.
 */
import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import type { PostlineConfig } from '../../shared/config.js';
import type { ConsoleDeps } from './console-app.js';
import { feedbackSecrets, sessionKeysFrom } from './console-session.js';
import { LiveEvents } from './live-events.js';
import { OpsHealth } from './ops-health.js';
import { startEventTail, type EventTail } from './event-tail.js';
import { Topics } from '../../shared/topics.js';

export async function openConsole(
  o: { config: PostlineConfig; kafka: Kafka; logger: Logger } & Pick<ConsoleDeps, 'apiKeys' | 'directory' | 'templates' | 'suppressions' | 'deadLetters' | 'send' | 'webhooks' | 'events'>,
): Promise<{ deps: ConsoleDeps; stop(): Promise<void> }> {
  const { keys, random } = sessionKeysFrom(feedbackSecrets(o.config.feedback));
  if (random) o.logger.warn('console sessions are sealed with a random key of this process (no feedback.keys): they end when it restarts and work on this replica only');
  const live = new LiveEvents({ historyMinutes: o.config.console.historyMinutes });
  const health = new OpsHealth({ historyMinutes: o.config.console.historyMinutes });
  // The console's live view must never keep the send API from starting: a failed start of the
  // reader (email.events not created yet, the broker busy) is retried in the background.
  let tail: EventTail | undefined;
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;
  const start = async (): Promise<void> => {
    try {
      const t = await startEventTail({ kafka: o.kafka, live, health, logger: o.logger, historyMinutes: o.config.console.historyMinutes });
      if (stopped) await t.stop();
      else tail = t;
    } catch (err) {
      if (stopped) return;
      o.logger.warn({ err, topic: Topics.events }, 'console: cannot read email.events yet; retrying in 5 s');
      retry = setTimeout(() => void start(), 5000);
      retry.unref();
    }
  };
  await start();
  return {
    deps: { config: o.config.console, apiKeys: o.apiKeys, directory: o.directory, configuredDomains: o.config.ingest.senderDomains, templates: o.templates, suppressions: o.suppressions, deadLetters: o.deadLetters, ...(o.send ? { send: o.send } : {}), ...(o.webhooks ? { webhooks: o.webhooks } : {}), ...(o.events ? { events: o.events } : {}), live, health, sessionKeys: keys, readApiUrl: o.config.ingest.readApiUrl },
    async stop() {
      stopped = true;
      clearTimeout(retry);
      await tail?.stop();
    },
  };
}
