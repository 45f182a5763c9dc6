/**
 * Reads `email.events` into `LiveEvents` (and `OpsHealth`, the pools and sites page) for the console: a consumer group of its own per
 * process (every replica serving the console sees every event; nothing is committed, the group
 * is deleted at stop), starting `historyMinutes` back so the per-minute counts have a past,
 * then following the topic as it grows: a lone reader whose fetch is answered by the first new
 * event, so a new message shows on the overview within a second (not a `follower`, whose fetch
 * may wait up to half a second by itself on the Postline broker and `kafka.followerMaxWaitMs`
 * on Kafka). Its fetches are paced (`paceFetches`): after one that brought events, the next
 * waits out 250 ms, so a burst reaches it as one batch. Unpaced, every event of every message
 * woke this reader for a fetch of its own (three per message, measured under `npm start` at 10
 * messages/s: 3 of the ~12 Kafka requests the stages process made per message). An undecodable
 * record is skipped: it is not the console's to judge.
 */
import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import { LONE_READER } from '../../shared/kafka/client.js';
import { paceFetches } from '../../shared/kafka/fetch-wake.js';
import type { Logger } from 'pino';
import { EmailEventContract } from '../../shared/contracts/email-event.js';
import { Topics } from '../../shared/topics.js';
import type { LiveEvents } from './live-events.js';
import type { OpsHealth } from './ops-health.js';

/** At most one fetch per this interval while events keep coming. */
const PACE_MS = 250;

export interface EventTail {
  stop(): Promise<void>;
}

/** Starts reading; resolves once the consumer runs (history arrives in the background). */
export async function startEventTail(o: { kafka: Kafka; live: LiveEvents; health?: OpsHealth; logger: Logger; historyMinutes: number; topic?: string }): Promise<EventTail> {
  const topic = o.topic ?? Topics.events;
  const groupId = `postline-console-${randomUUID()}`;
  const admin = o.kafka.admin();
  paceFetches(groupId, PACE_MS);
  const consumer = o.kafka.consumer({ groupId, ...LONE_READER });
  await admin.connect();
  try {
    const from = await admin.fetchTopicOffsetsByTimestamp(topic, Date.now() - o.historyMinutes * 60_000);
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: false });
    void consumer.run({
      autoCommit: false,
      eachMessage: async ({ message }) => {
        if (!message.value) return;
        try {
          const event = EmailEventContract.decode(message.value);
          o.live.apply(event);
          o.health?.apply(event);
        } catch {
          // a foreign or broken record: the analytics stage reports those
        }
      },
    });
    // `run` has created the group synchronously; seeking now sets where its first fetch starts.
    for (const f of from) consumer.seek({ topic, partition: f.partition, offset: f.offset });
  } catch (err) {
    await consumer.disconnect().catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
    throw err;
  }
  o.logger.info({ topic, historyMinutes: o.historyMinutes }, 'console reading email.events');
  return {
    async stop() {
      await consumer.disconnect().catch(() => undefined);
      await admin.deleteGroups([groupId]).catch(() => undefined);
      await admin.disconnect().catch(() => undefined);
    },
  };
}
