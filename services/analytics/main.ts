/**
 * `postline analytics`: the ClickHouse sink for `email.events` and the read API (timeline,
 * search, stats) on one port with /metrics, /healthz and /readyz. `startAnalytics` runs it
 * in-process (tests, `npm start`); `migrate` is what `postline migrate` calls.
 *
 * With no ClickHouse URL configured the stage runs the engine in-process on its data
 * directory, which it alone may open: that is why the read API is served here.
 */
import { parseArgs } from 'node:util';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { loadPostlineConfig, type PostlineConfig } from '../../shared/config.js';
import { ConfigError } from '../../shared/config-loader.js';
import { createLogger } from '../../shared/logger.js';
import { registerOpsRoutes } from '../../shared/ops-server.js';
import { serviceMain, startRuntime, type RuntimeOptions } from '../../shared/service-runtime.js';
import { Topics } from '../../shared/topics.js';
import { backoffDelayMs } from '../../shared/backoff.js';
import type { Shutdown } from '../../shared/lifecycle.js';
import { ApiKeyStore, bearerToken, bootstrapApiKeys } from '../../shared/http/api-keys.js';
import { RequestRejected } from '../../shared/http/errors.js';
import { openStageApiKeys } from '../../shared/admin/open-admin-directory.js';
import { instrumentApiKeys } from '../../shared/admin/admin-metrics.js';
import { apiServerOptions } from '../../shared/http/server-options.js';
import { openClickHouse } from './clickhouse.js';
import { migrate as applyMigrations, type MigrateResult } from './schema/migrator.js';
import { kafkaEngineStatements } from './schema/kafka-engine.js';
import { ClickHouseSink } from './sink/clickhouse-sink.js';
import { clickHouseEventsWriter, type EventsWriter } from './sink/events-writer.js';
import { instrumentSink } from './sink/sink-metrics.js';
import { sinkFetchOptions } from './sink/fetch-options.js';
import { follower } from '../../shared/kafka/client.js';
import { registerReadApi } from './read-api/read-api.js';

export const ANALYTICS_SERVICE = 'analytics';
const DAY = 86_400_000;

export interface AnalyticsDeps {
  logger?: Logger;
  registry?: Registry;
  /** An already open client (tests share one embedded engine per process); left open on close. */
  clickhouse?: ClickHouseClient;
  /** Wraps the sink's writer (fault tests put a failing ClickHouse in front). */
  wrapWriter?: (w: EventsWriter) => EventsWriter;
  /** Read-API authentication; defaults to the send API's keys (`ingest.apiKeys`). */
  authenticate?: (request: FastifyRequest) => string | null | Promise<string | null>;
  /** Listen on `analytics.host:port` (default true); tests use `app.inject`. */
  listen?: boolean;
  /** Topic to consume (default email.events). */
  topic?: string;
  /** What a dead consumer does (see RuntimeOptions; `postline stages` stops every stage it hosts). */
  onConsumerDead?: RuntimeOptions['onConsumerDead'];
}

export interface RunningAnalytics {
  app: FastifyInstance;
  sink: ClickHouseSink;
  client: ClickHouseClient;
  /** Where the API listens, when it does. */
  address?: string;
  shutdown: Shutdown;
  close(): Promise<boolean>;
}

function schemaParams(a: PostlineConfig['analytics']) {
  return { database: a.database, retentionDays: a.retentionDays, rollupRetentionDays: a.rollupRetentionDays };
}

/** Applies pending migrations and the configured retention; what `postline migrate` runs. */
export async function migrate(config: PostlineConfig, logger: Logger = createLogger('migrate', config.log)): Promise<MigrateResult> {
  const a = config.analytics;
  const { client, location } = await openClickHouse({ url: a.clickhouseUrl, user: a.clickhouseUser, password: a.clickhousePassword, dataDir: a.dataDir, requestTimeoutMs: a.insertTimeoutMs });
  try {
    const result = await applyMigrations(client, schemaParams(a), logger);
    logger.info({ clickhouse: location, database: a.database, ...result }, 'analytics schema up to date');
    return result;
  } finally {
    await client.close();
  }
}

/** Retries `fn` with backoff until it succeeds or `signal` aborts (ClickHouse may start after us). */
async function untilDone<T>(fn: () => Promise<T>, logger: Logger, what: string, signal: AbortSignal, maxMs: number): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (signal.aborted) throw err;
      const delay = backoffDelayMs(attempt + 1, { initialMs: 200, maxMs });
      logger.warn({ err, attempt, retryInMs: delay }, `${what} failed; retrying`);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/** The read API's check: a known, unrevoked key (null: 401) with the `read` scope (else 403); its tenant, or the one an admin key names in `Postline-Tenant`. */
export function readApiAuthenticate(keys: ApiKeyStore, logger: Logger): (r: FastifyRequest) => string | null {
  if (keys.size === 0) logger.warn('no API keys configured (ingest.apiKeys / ingest.apiKeysFile) or created (email.admin): every read request will be refused with 401');
  return (r) => {
    const who = keys.identify(bearerToken(r.headers.authorization) ?? '');
    if (!who) return null;
    if (!keys.permits(who, 'read')) throw new RequestRejected('FORBIDDEN', 'this API key does not have the "read" scope');
    const as = r.headers[TENANT_OVERRIDE_HEADER];
    if (as === undefined) return who.tenant;
    // An admin reads any tenant's data (the console's tenant switch); any other key only its own.
    if (!keys.permits(who, 'admin')) throw new RequestRejected('FORBIDDEN', `only an API key with the "admin" scope may name a tenant (${TENANT_OVERRIDE_HEADER})`);
    if (typeof as !== 'string' || as.length === 0 || as.length > 256) throw new RequestRejected('VALIDATION_FAILED', 'the request is invalid', [{ field: TENANT_OVERRIDE_HEADER, message: 'one tenant name of 1 to 256 characters' }]);
    return as;
  };
}

/** The header with which an admin key reads another tenant's messages and stats (`read` and `admin` scopes). */
export const TENANT_OVERRIDE_HEADER = 'postline-tenant';

export async function startAnalytics(config: PostlineConfig, deps: AnalyticsDeps = {}): Promise<RunningAnalytics> {
  const a = config.analytics;
  const bootstrapKeys = deps.authenticate ? [] : bootstrapApiKeys(config.ingest);
  const rt = await startRuntime(ANALYTICS_SERVICE, config, { logger: deps.logger, registry: deps.registry, onConsumerDead: deps.onConsumerDead });
  const { logger } = rt;
  let authenticate = deps.authenticate;
  if (!authenticate) {
    // The same keys as the send API: bootstrap ones and those on email.admin (revocations seen live).
    const { apiKeys: keys } = await openStageApiKeys(rt, bootstrapKeys);
    instrumentApiKeys(keys, undefined, rt.registry);
    authenticate = readApiAuthenticate(keys, logger);
  }
  const opened = deps.clickhouse
    ? { client: deps.clickhouse, location: 'provided client' }
    : await openClickHouse({ url: a.clickhouseUrl, user: a.clickhouseUser, password: a.clickhousePassword, dataDir: a.dataDir, requestTimeoutMs: a.insertTimeoutMs });
  const { client } = opened;
  const giveUp = new AbortController();
  rt.shutdown.add('stop start-up retries', () => giveUp.abort());
  if (a.migrateOnStart) await untilDone(() => applyMigrations(client, schemaParams(a), logger), logger, 'schema migration', giveUp.signal, a.insertRetryMaxMs);

  const base = clickHouseEventsWriter(client, a.database);
  const { paceMs, ...fetchOptions } = sinkFetchOptions(a.batchMaxWaitMs);
  const consumer = rt.kafka.consumer(follower({ groupId: a.groupId, sessionTimeout: a.sessionTimeoutMs, ...fetchOptions }, paceMs));
  rt.watchConsumer('consumer', consumer);
  await consumer.connect();
  let joined = false;
  consumer.on(consumer.events.GROUP_JOIN, () => (joined = true));
  const sink = new ClickHouseSink({
    consumer,
    topic: deps.topic ?? Topics.events,
    writer: deps.wrapWriter ? deps.wrapWriter(base) : base,
    deadLetter: (record, code, reason) => rt.events.deadLetter(record, code, reason),
    logger: logger.child({ component: 'sink' }),
    batchMaxRows: a.batchMaxRows,
    batchMaxWaitMs: a.batchMaxWaitMs,
    batchBusyRowsPerSecond: a.batchBusyRowsPerSecond,
    batchBusyWaitMs: a.batchBusyWaitMs,
    maxBufferedRows: a.maxBufferedRows,
    retryMaxMs: a.insertRetryMaxMs,
  });
  instrumentSink(sink, rt.registry);
  rt.readiness.consumer = () => (joined ? null : 'not yet in the consumer group');
  rt.readiness.clickhouse = () => sink.insertProblem;

  const app = Fastify({ ...apiServerOptions(), loggerInstance: logger as FastifyBaseLogger, logController: new LogController({ disableRequestLogging: true }) });
  registerOpsRoutes(app, { registry: rt.registry, readiness: rt.readiness, liveness: rt.liveness });
  registerReadApi(app, {
    client,
    database: a.database,
    authenticate,
    limits: { queryTimeoutMs: a.queryTimeoutMs, maxStatsPoints: a.maxStatsPoints, maxStatsSpanMs: a.rollupRetentionDays * DAY, maxSearchSpanMs: a.maxSearchDays * DAY },
  });

  // Order: stop answering, flush and commit what the sink holds, disconnect, then the
  // runtime's producer (dead letters) and finally the engine.
  rt.shutdown.add('close read API', () => app.close());
  rt.shutdown.add('stop sink (flush and commit)', () => sink.stop(Math.max(1000, config.ops.shutdownGraceMs - 5000)));
  rt.shutdown.add('disconnect consumer', () => consumer.disconnect());
  rt.addFinalShutdownSteps();
  if (!deps.clickhouse) rt.shutdown.add('close ClickHouse', () => client.close());

  await sink.start();
  let address: string | undefined;
  if (deps.listen !== false) address = await app.listen({ host: a.host, port: a.port });
  else await app.ready();
  logger.info({ clickhouse: opened.location, database: a.database, api: address, group: a.groupId }, 'analytics running');
  return { app, sink, client, address, shutdown: rt.shutdown, close: () => rt.shutdown.run() };
}

const USAGE = `usage: postline analytics [migrate | kafka-engine-ddl]

  (no argument)     run the ClickHouse sink for email.events and the read API
  migrate           apply pending ClickHouse migrations and retention, then exit
  kafka-engine-ddl  print the SQL that makes ClickHouse read email.events itself (instead of
                    this sink), for the configured database and brokers; apply it after migrate

Configuration comes from POSTLINE_* variables (see the README's configuration reference);
POSTLINE_ANALYTICS_CLICKHOUSE_URL selects a ClickHouse server, empty runs the embedded engine.
`;

export async function main(argv: string[] = []): Promise<void> {
  const { values, positionals } = parseArgs({ args: argv, options: { help: { type: 'boolean', short: 'h' } }, allowPositionals: true });
  const sub = positionals[0];
  if (values.help || positionals.length > 1 || (sub && sub !== 'migrate' && sub !== 'kafka-engine-ddl')) {
    process.stdout.write(USAGE);
    process.exit(values.help ? 0 : 2);
  }
  if (!sub) {
    await serviceMain(ANALYTICS_SERVICE, (config) => startAnalytics(config));
    return;
  }
  let config: PostlineConfig;
  try {
    config = loadPostlineConfig();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`postline analytics: ${err.message}\n`);
    process.exit(2);
  }
  if (sub === 'migrate') {
    await migrate(config);
    return;
  }
  const a = config.analytics;
  const ddl = kafkaEngineStatements({ database: a.database, brokers: config.kafka.brokers, topic: Topics.events, groupName: `${a.groupId}-clickhouse`, consumers: 1, retentionDays: a.retentionDays });
  process.stdout.write(`${ddl.map((q) => `${q};`).join('\n\n')}\n`);
}
