/**
 * `postline ingest`: the send API. Wires config, logger, metrics, Kafka, the idempotency
 * table, the acceptor and the Fastify app, and shuts them down in order: stop accepting HTTP
 * (in-flight requests finish), stop the table, drain the producer, disconnect.
 * `startIngest` runs it in-process (npm start, tests).
 */
import { EventEmitter } from 'node:events';
import type { FastifyInstance } from 'fastify';
import { PRIORITIES, type PostlineConfig } from '../../shared/config.js';
import { Topics } from '../../shared/topics.js';
import { ConfigError } from '../../shared/config-loader.js';
import { optionsReference } from '../../shared/config-docs.js';
import type { Shutdown } from '../../shared/lifecycle.js';
import { serviceMain, startRuntime, type RuntimeOptions } from '../../shared/service-runtime.js';
import { ApiKeyStore, bootstrapApiKeys, loadApiKeyStore } from '../../shared/http/api-keys.js';
import { configuredSenderDomains, withAdministeredDomains } from '../../shared/sender-domains.js';
import { openStageApiKeys } from '../../shared/admin/open-admin-directory.js';
import { instrumentApiKeys } from '../../shared/admin/admin-metrics.js';
import { IdempotencyStore } from './idempotency-store.js';
import { Acceptor } from './acceptor.js';
import { buildApp } from './app.js';
import { instrumentIngest } from './ingest-metrics.js';
import { openTemplateRepository } from '../../shared/templates/template-repository.js';
import { openSuppressionBook } from '../../shared/suppressions/suppression-book.js';
import { openDeadLetterApi } from '../../shared/dead-letters/dead-letter-api.js';
import { loadFeedbackKeyring } from '../../shared/feedback/feedback-keys.js';
import { providerFeedbackSetup, wireProviderFeedback } from '../provider-feedback/provider-feedback-setup.js';
import { openInboundRouteBook } from '../../shared/inbound-routes/inbound-route-book.js';
import { openWebhookApi } from '../../shared/webhooks/webhook-api.js';
import { openConsole } from '../console/open-console.js';

export interface StartIngestOptions extends RuntimeOptions {
  /** Listen on `config.ingest.host:port` (default); false builds everything but only serves `inject`. */
  listen?: boolean;
}

export interface IngestHandle {
  app: FastifyInstance;
  /** `http://host:port` when listening. */
  address?: string;
  /** The ops server (`/metrics`, `/healthz`, `/readyz` on `ops.port`) when listening. */
  opsAddress?: string;
  shutdown: Shutdown;
  /** 'accepted' (priority, scheduled) for each message accepted (the Acceptor's events). */
  intake: EventEmitter;
  /** Runs the shutdown steps; safe to call twice. */
  close(): Promise<boolean>;
}

/** Checks what the schema cannot (relations between options); throws ConfigError. */
export function checkIngestConfig(config: PostlineConfig['ingest']): void {
  if (config.idempotencyLeaseMs <= config.produceTimeoutMs) {
    throw new ConfigError([
      `POSTLINE_INGEST_IDEMPOTENCY_LEASE_MS (ingest.idempotencyLeaseMs) must exceed ingest.produceTimeoutMs (${config.idempotencyLeaseMs} <= ${config.produceTimeoutMs})`,
    ]);
  }
}

/** The configured keys plus those of the keys file (bootstrap keys only, no administered ones); throws ConfigError when the file is bad. */
export function loadApiKeys(config: PostlineConfig['ingest']): ApiKeyStore {
  return loadApiKeyStore(config);
}

/**
 * Starts the send API in this process: connects to Kafka (creating topics when configured),
 * loads the idempotency table, then listens on `config.ingest.host:port` (with /healthz and
 * /readyz) and starts the ops server on `config.ops.port` (/metrics, /healthz, /readyz).
 * Resolves once requests can be served.
 */
export async function startIngest(config: PostlineConfig, opts: StartIngestOptions = {}): Promise<IngestHandle> {
  checkIngestConfig(config.ingest);
  // Read before connecting: a bad keys file fails start-up.
  const bootstrapKeys = bootstrapApiKeys(config.ingest);
  // Feedback keys verify /u/<token> unsubscribe links and provider webhooks' refs; without one neither is served.
  const feedbackKeys = loadFeedbackKeyring(config.feedback);
  // Before connecting: bad provider feedback config fails start-up.
  const feedbackSetup = providerFeedbackSetup(config.providerFeedback, feedbackKeys);
  const rt = await startRuntime('ingest', config, opts);
  // The first message after a start should not pay for kafkajs's metadata fetch of its topics.
  await rt.producer.warm([...PRIORITIES.map((p) => Topics.requestedFor(p)), Topics.scheduled, Topics.events]);
  const providerFeedback = feedbackSetup && wireProviderFeedback(feedbackSetup, rt.producer, rt.registry);
  // Administered keys, revocations and sender domains (email.admin), read to its end before the first request.
  const { admin, apiKeys } = await openStageApiKeys(rt, bootstrapKeys);
  instrumentApiKeys(apiKeys, admin.directory, rt.registry);
  if (apiKeys.size === 0) rt.logger.warn('no API keys configured (ingest.apiKeys / ingest.apiKeysFile) or created (email.admin): every send request will be refused with 401');
  const table = IdempotencyStore.table(rt.kafka, rt.producer, rt.logger);
  const observer = new EventEmitter();
  const senderDomains = withAdministeredDomains(configuredSenderDomains(config.ingest.senderDomains), admin.directory);
  const acceptor = new Acceptor({
    producer: rt.producer,
    events: rt.events,
    idempotency: new IdempotencyStore(table, { ttlMs: config.ingest.idempotencyTtlMs, leaseMs: config.ingest.idempotencyLeaseMs }),
    limits: { ...config.ingest, schedule: config.schedule },
    produceTimeoutMs: config.ingest.produceTimeoutMs,
    logger: rt.logger,
    senderDomains,
  });
  acceptor.warmUp();
  instrumentIngest(acceptor, observer, rt.registry);
  const templates = await openTemplateRepository({ kafka: rt.kafka, producer: rt.producer, logger: rt.logger });
  const suppressions = await openSuppressionBook({ kafka: rt.kafka, producer: rt.producer, logger: rt.logger });
  const deadLetters = await openDeadLetterApi({ kafka: rt.kafka, produce: (topic, message) => rt.producer.send(topic, message), logger: rt.logger });
  const inboundRoutes = await openInboundRouteBook({ kafka: rt.kafka, producer: rt.producer, logger: rt.logger });
  const webhooks = await openWebhookApi({ kafka: rt.kafka, producer: rt.producer, logger: rt.logger, config: config.webhooks, events: rt.events });
  const unsubscribe = feedbackKeys.enabled ? { keyring: feedbackKeys, events: rt.events, ...config.ingest.unsubscribe, publishTimeoutMs: config.ingest.produceTimeoutMs } : undefined;
  const consoleParts = config.console.enabled ? await openConsole({ config, kafka: rt.kafka, logger: rt.logger, apiKeys, directory: admin.directory, templates: templates.repository, suppressions: suppressions.book, deadLetters: deadLetters.deps, send: acceptor, webhooks: webhooks.deps, events: rt.events }) : undefined;
  if (consoleParts) rt.shutdown.add('stop console event reader', () => consoleParts.stop());
  const app = buildApp({ acceptor, apiKeys, config: config.ingest, logger: rt.logger, registry: rt.registry, readiness: rt.readiness, observer, templates: templates.repository, suppressions: suppressions.book, deadLetters: deadLetters.deps, unsubscribe, providerFeedback, console: consoleParts?.deps, webhooks: webhooks.deps, admin: { directory: admin.directory, apiKeys, configuredDomains: config.ingest.senderDomains }, inboundRoutes: { book: inboundRoutes.book, reservedDomains: [config.feedback.returnPathDomain], senderDomains },
    cancel: { schedulerUrl: config.schedule.schedulerUrl, readApiUrl: config.ingest.readApiUrl, timeoutMs: config.schedule.cancelTimeoutMs },
  });
  // Claims past their window are forgotten in memory too; the topic ages them out by retention.
  const evictor = setInterval(() => table.evict((_key, claim) => claim.expiresAt < Date.now()), 10 * 60_000);
  evictor.unref();
  rt.shutdown.add('stop accepting HTTP', () => app.close());
  // Together: each table's reader waits out its fetch in flight (kafka.fetchMaxWaitMs) when it
  // stops; one after another, six of them made every ingest stop take six of those waits.
  rt.shutdown.add('stop template, suppression, dead-letter, inbound-route, webhook and idempotency tables', () => {
    clearInterval(evictor);
    return Promise.all([templates.stop(), suppressions.stop(), deadLetters.stop(), inboundRoutes.stop(), webhooks.stop(), table.stop()]);
  });
  rt.addFinalShutdownSteps();
  let address: string | undefined;
  let opsAddress: string | undefined;
  try {
    // Loaded before the first request, so a restarted replica already knows every live key.
    await table.start();
    if (opts.listen === false) await app.ready();
    else {
      opsAddress = await rt.startOps();
      address = await app.listen({ host: config.ingest.host, port: config.ingest.port });
    }
  } catch (err) {
    await rt.shutdown.run();
    throw err;
  }
  rt.logger.info({ address, ops: opsAddress, tenants: apiKeys.size }, 'ingest API ready');
  return { app, address, opsAddress, shutdown: rt.shutdown, intake: acceptor, close: () => rt.shutdown.run() };
}

const help = (): string => `usage: postline ingest

Runs the send API (POST /v1/emails, POST /v1/emails/batch, /v1/inbound-routes, GET/POST /u/<token> with
feedback keys, the provider webhooks POST /feedback/ses and /feedback/sendgrid when configured,
/healthz and /readyz on ingest.port; /metrics, /healthz and /readyz on ops.port). Configured by environment variables (or a JSON file named by POSTLINE_CONFIG):

${optionsReference(['ingest.', 'kafka.', 'ops.', 'providerFeedback.'])}
`;

/** The `postline ingest` command. */
export async function main(argv: string[] = []): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(help());
    return;
  }
  await serviceMain('ingest', async (config) => {
    try {
      return await startIngest(config);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      process.stderr.write(`postline ingest: ${err.message}\n`);
      process.exit(2);
    }
  });
}
