/**
 * `postline webhooks`: delivers email.events (and email.inbound as `inbound.received`) to the
 * tenants' webhook endpoints, signed (Standard Webhooks). Wires the endpoint book, the SSRF
 * guard and HTTP client, the deliverer, the events consumer (StageConsumer: commits once each
 * record's deliveries are delivered or durably on a retry tier) and the retry tier consumer.
 * The events consumer is a `follower`: an event is posted within about a second of being
 * published. Shuts down in order: stop consuming (in-flight deliveries finish), stop the table,
 * close the HTTP client, then the runtime's producer and ops server. `startWebhooks` runs it
 * in-process.
 */
import { EventEmitter } from 'node:events';
import type { Consumer } from 'kafkajs';
import type { PostlineConfig } from '../../shared/config.js';
import type { Shutdown } from '../../shared/lifecycle.js';
import { serviceMain, startRuntime, type RuntimeOptions } from '../../shared/service-runtime.js';
import { optionsReference } from '../../shared/config-docs.js';
import { Topics } from '../../shared/topics.js';
import { instrumentStageConsumer } from '../../shared/metrics.js';
import { StageConsumer } from '../../shared/kafka/stage-consumer.js';
import { FOLLOWER_COMMIT_INTERVAL_MS, follower } from '../../shared/kafka/client.js';
import { SsrfGuard } from '../../shared/http/ssrf-guard.js';
import { openEndpointBook } from '../../shared/webhooks/endpoint-book.js';
import { WEBHOOK_RETRY_TOPICS } from '../../shared/webhooks/delivery-job.js';
import { WebhookClient } from './webhook-client.js';
import { Deliverer } from './deliverer.js';
import { RetryTierConsumer } from './retry-tier-consumer.js';
import { deliveriesFor, payloadOf } from './record-deliveries.js';
import { instrumentWebhooks } from './webhook-metrics.js';

export interface StartWebhooksOptions extends RuntimeOptions {
  /** Start the ops server (default true). */
  ops?: boolean;
}

export interface WebhooksHandle {
  deliverer: Deliverer;
  opsAddress?: string;
  shutdown: Shutdown;
  close(): Promise<boolean>;
}

export async function startWebhooks(config: PostlineConfig, opts: StartWebhooksOptions = {}): Promise<WebhooksHandle> {
  const wc = config.webhooks;
  const rt = await startRuntime('webhooks', config, opts);
  const { logger } = rt;
  const guard = new SsrfGuard({ allow: wc.allowPrivate, allowHttp: wc.allowHttp });
  const client = new WebhookClient({ guard, timeoutMs: wc.timeoutMs, connectTimeoutMs: wc.connectTimeoutMs, maxResponseBytes: wc.maxResponseBytes, connections: wc.endpointConcurrency });
  const state: { stopBook?: () => Promise<void>; stage?: StageConsumer; tiers?: RetryTierConsumer; consumers: Consumer[]; deliverer?: Deliverer } = { consumers: [] };
  rt.shutdown
    .add('stop consuming and finish in-flight deliveries', () => Promise.all([state.stage?.stop(), state.tiers?.stop()]))
    // Together (each waits out its fetch in flight).
    .add('disconnect consumers, stop endpoint table', () => Promise.all([...state.consumers.map((c) => c.disconnect()), state.stopBook?.()]))
    .add('close breakers, write the delivery log entries still waiting', () => state.deliverer?.close())
    .add('close HTTP connections', () => client.close());
  rt.addFinalShutdownSteps();
  try {
    let deliverer: Deliverer | undefined;
    const endpoints = await openEndpointBook({ kafka: rt.kafka, producer: rt.producer, logger, onChange: (id, value) => deliverer?.endpointChanged(id, value) });
    state.stopBook = endpoints.stop;
    const book = endpoints.book;
    deliverer = state.deliverer = new Deliverer({ book, client, producer: rt.producer, events: rt.events, logger, config: wc });
    instrumentWebhooks(deliverer, rt.registry);
    const d = deliverer;
    const main = rt.kafka.consumer(follower({ groupId: wc.groupId }));
    // Its partitions are held until due times; a resume ends the fetch wait (shared/kafka/fetch-wake.ts).
    const retries = rt.kafka.consumer({ groupId: wc.retryGroupId });
    state.consumers = [main, retries];
    state.stage = new StageConsumer({
      consumer: main,
      topics: [Topics.events, Topics.inbound],
      concurrency: wc.concurrency,
      // Inbound mail carries attachments: bound what is held at once.
      maxInFlightBytes: 64 * 1024 * 1024,
      deadLetters: rt.events,
      logger,
      // A new group reads the retained events once; an endpoint only gets events from after its creation.
      fromBeginning: true,
      // Off the send path, delivered at least once: a crash redoes at most this interval's deliveries.
      commitIntervalMs: FOLLOWER_COMMIT_INTERVAL_MS,
      batchEndCommit: 'interval',
      handle: async ({ topic, message }) => {
        // No endpoint at all (an install that has not made one yet): no event to decode. A
        // malformed event is then not dead-lettered here too; the analytics sink parks those.
        if (book.size === 0 && topic === Topics.events) return;
        const p = payloadOf(topic, message);
        const list = deliveriesFor(p, book.endpointsOf(p.tenant), new Date());
        if (list.length > 0) await Promise.all(list.map((x) => d.submit(x)));
      },
    });
    state.tiers = new RetryTierConsumer({ consumer: retries, topics: WEBHOOK_RETRY_TOPICS, retry: (job) => d.retry(job), events: rt.events, logger });
    const stageEvents = new EventEmitter();
    instrumentStageConsumer('webhooks', stageEvents as unknown as StageConsumer, rt.registry);
    for (const source of [state.stage, state.tiers]) for (const e of ['processed', 'failed', 'committed', 'lag', 'rebalanced', 'deadLettered']) source.on(e, (...a: unknown[]) => stageEvents.emit(e, ...a));
    const joined = new Set<string>();
    for (const [name, c] of [[wc.groupId, main], [wc.retryGroupId, retries]] as const) {
      c.on(c.events.GROUP_JOIN, () => joined.add(name));
      rt.watchConsumer(name, c);
    }
    rt.readiness.consumer = () => (joined.size === 2 ? null : 'not yet in the consumer groups');
    await Promise.all(state.consumers.map((c) => c.connect()));
    await state.stage.start();
    await state.tiers.start();
    const opsAddress = opts.ops === false ? undefined : await rt.startOps();
    logger.info({ groups: [wc.groupId, wc.retryGroupId], allowPrivate: wc.allowPrivate, allowHttp: wc.allowHttp }, 'webhooks running');
    return { deliverer, opsAddress, shutdown: rt.shutdown, close: () => rt.shutdown.run() };
  } catch (err) {
    await rt.shutdown.run();
    throw err;
  }
}

const HELP = (): string => `usage: postline webhooks

Delivers email.events (as email.<type>) and email.inbound (as inbound.received) to the tenants'
webhook endpoints (managed with /v1/webhooks on the send API), signed with Standard Webhooks,
retried on email.webhooks.retry.<5s|1m|10m|1h|6h|24h>; /metrics, /healthz and /readyz on ops.port.
Configured by environment variables (or a JSON file named by POSTLINE_CONFIG):

${optionsReference(['webhooks.', 'kafka.', 'ops.'])}
`;

/** The `postline webhooks` command. */
export async function main(argv: string[] = []): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(HELP());
    return;
  }
  await serviceMain('webhooks', (config) => startWebhooks(config));
}
