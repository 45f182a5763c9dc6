/**
 * What the ingest app needs to serve the dead-letter routes, in one call: a started index of
 * `email.dead` and the functions to read letters back and produce replays.
 *
 *   const deadLetters = await openDeadLetterApi({ kafka: rt.kafka, produce: (t, m) => rt.producer.send(t, m), logger: rt.logger });
 *   // inside the authenticated /v1 scope:
 *   await registerDeadLetterRoutes(v1, deadLetters.deps);
 *   rt.shutdown.add('stop dead-letter index', () => deadLetters.stop());
 */
import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { DeadLetterIndex } from './dead-letter-index.js';
import { fetchDeadLetters, type ProduceFn } from './dead-letters.js';
import type { DeadLetterRoutesDeps } from './dead-letter-routes.js';

export interface DeadLetterApi {
  deps: DeadLetterRoutesDeps;
  stop(): Promise<void>;
}

export async function openDeadLetterApi(o: { kafka: Kafka; produce: ProduceFn; logger: Logger; maxPerTenant?: number }): Promise<DeadLetterApi> {
  const index = new DeadLetterIndex({ kafka: o.kafka, logger: o.logger, ...(o.maxPerTenant ? { maxPerTenant: o.maxPerTenant } : {}) });
  await index.start();
  return {
    deps: { index, fetch: (ids) => fetchDeadLetters(o.kafka, ids), produce: o.produce },
    stop: () => index.stop(),
  };
}
