/**
 * What the `/v1/webhooks` routes need, opened together for the API process: the endpoint book
 * (email.webhooks), the delivery log (email.webhooks.deliveries), the SSRF guard from
 * `webhooks` config, and replay over email.events.
 */
import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import type { PostlineConfig } from '../config.js';
import type { BatchingProducer } from '../kafka/batching-producer.js';
import { SsrfGuard } from '../http/ssrf-guard.js';
import { openEndpointBook, type EndpointBook } from './endpoint-book.js';
import { openDeliveryLog, type DeliveryLog } from './delivery-log.js';
import { replayEvents, type ReplayResult } from './replay.js';
import type { WebhookEndpoint } from '../contracts/webhook-endpoint.js';
import type { EventPublisher } from '../events.js';

export interface WebhookApiDeps {
  book: EndpointBook;
  guard: SsrfGuard;
  config: PostlineConfig['webhooks'];
  log: DeliveryLog;
  replay(endpoint: WebhookEndpoint, fromMs: number, toMs: number): Promise<ReplayResult>;
  events?: Pick<EventPublisher, 'publish'>;
}

export async function openWebhookApi(opts: { kafka: Kafka; producer: BatchingProducer; logger: Logger; config: PostlineConfig['webhooks']; events?: Pick<EventPublisher, 'publish'> }): Promise<{ deps: WebhookApiDeps; stop(): Promise<void> }> {
  const { kafka, producer, logger, config } = opts;
  const endpoints = await openEndpointBook({ kafka, producer, logger });
  let log: Awaited<ReturnType<typeof openDeliveryLog>>;
  try {
    log = await openDeliveryLog({ kafka, logger, perEndpoint: config.deliveryLogSize });
  } catch (err) {
    await endpoints.stop().catch(() => undefined);
    throw err;
  }
  const guard = new SsrfGuard({ allow: config.allowPrivate, allowHttp: config.allowHttp });
  return {
    deps: {
      book: endpoints.book,
      guard,
      config,
      log: log.log,
      events: opts.events,
      replay: (endpoint, fromMs, toMs) => replayEvents({ kafka, producer, endpoint, fromMs, toMs, maxRecords: config.replayMaxRecords }),
    },
    async stop() {
      await Promise.allSettled([endpoints.stop(), log.stop()]);
    },
  };
}
