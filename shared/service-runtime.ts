/**
 * What every stage's `main.ts` sets up the same way: logger, metrics registry, Kafka client,
 * topics, a durable batching producer, the event publisher, the ops server and an ordered
 * shutdown. A stage adds its own parts and shutdown steps in between; `main.ts` files stay
 * about what is particular to their stage.
 */
import type { FastifyInstance } from 'fastify';
import type { Consumer, Kafka, Producer } from 'kafkajs';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { loadPostlineConfig, type PostlineConfig } from './config.js';
import { ConfigError } from './config-loader.js';
import { initTracing } from './tracing.js';
import { createLogger } from './logger.js';
import { createRegistry, instrumentEvents } from './metrics.js';
import { createKafka, ensureTopics } from './kafka/client.js';
import { BatchingProducer, type BatchingProducerOptions } from './kafka/batching-producer.js';
import { EventPublisher } from './events.js';
import { Shutdown } from './lifecycle.js';
import { buildOpsApp, type ReadinessCheck } from './ops-server.js';
import { topicSpecs } from './topics.js';
import { ConsumerLiveness, watchLiveness } from './kafka/consumer-liveness.js';
import { guardUndecodableBatches } from './kafka/undecodable-batches.js';

export interface Runtime {
  service: string;
  config: PostlineConfig;
  logger: Logger;
  registry: Registry;
  kafka: Kafka;
  producer: BatchingProducer;
  events: EventPublisher;
  shutdown: Shutdown;
  readiness: Record<string, ReadinessCheck>;
  /** Liveness checks `/healthz` runs (see `watchConsumer`). */
  liveness: Record<string, () => string | null>;
  /**
   * Makes the stage's liveness follow `consumer` (call before `connect`/`run`): `/healthz`
   * fails once it crashed for good or has been out of its group longer than
   * `ops.consumerGraceMs`, and under `npm start` (POSTLINE_SUPERVISED=1) the stage then shuts
   * down and exits 1 so the supervisor restarts it. One call per consumer.
   */
  watchConsumer(name: string, consumer: Consumer): void;
  /**
   * A producer and event publisher of their own, for a lane that must not queue behind the
   * others' batches (critical: one idempotent producer sends one request at a time). Renewed
   * like the main producer; the final shutdown steps drain and disconnect it too.
   */
  dedicatedProducer(): Promise<{ producer: BatchingProducer; events: EventPublisher }>;
  /**
   * Starts the ops server (/metrics, /healthz, /readyz) on `config.ops`; returns its address.
   * `routes` registers a stage's own operations endpoints on it before it listens.
   */
  startOps(routes?: (app: FastifyInstance) => void): Promise<string>;
  /**
   * Adds the steps every stage ends its shutdown with — drain and disconnect the producer,
   * close the ops server. Call it after adding the stage's own steps (stop consuming, drain
   * in-flight work, close SMTP fleets), so those run first.
   */
  addFinalShutdownSteps(): void;
}

export interface RuntimeOptions {
  logger?: Logger;
  registry?: Registry;
  /**
   * What happens when a watched consumer is dead (default: under POSTLINE_SUPERVISED=1, shut
   * down and exit 1; otherwise only `/healthz` says so, for Kubernetes to act on).
   */
  onConsumerDead?: (problems: Record<string, string>) => void;
  /**
   * Batching of the stage's producers (main and dedicated); default `kafka.producerLingerMs`
   * (0: no linger) and one batch in flight. A stage whose callers wait on each ack (the SMTP
   * gateway's 250) sets `lingerMs: 0` whatever the configuration says.
   */
  producer?: Pick<BatchingProducerOptions, 'lingerMs' | 'maxInFlightBatches'>;
}

/**
 * The default for a dead consumer under a supervisor: stop in order (bounded by `graceMs`), then
 * exit non-zero so the supervisor restarts the process. `postline stages` uses it for its host.
 */
export function exitForRestart(logger: Logger, stop: () => Promise<unknown>, graceMs: number, what = 'this stage'): (problems: Record<string, string>, context?: Record<string, unknown>) => void {
  return (problems, context = {}) => {
    logger.fatal({ ...context, problems }, `consumer is not consuming; exiting so the supervisor restarts ${what}`);
    setTimeout(() => process.exit(1), graceMs).unref();
    void stop().finally(() => process.exit(1));
  };
}

/**
 * Connects to Kafka, creates missing topics (when configured) and a producer. The returned
 * shutdown already holds the producer's drain and disconnect as its last steps; a stage adds
 * its own steps with `shutdown.add` and they run first (see `finalSteps`).
 */
export async function startRuntime(service: string, config: PostlineConfig, opts: RuntimeOptions = {}): Promise<Runtime> {
  // Before any consumer fetches: a batch it cannot decode becomes a dead letter, not a stuck partition.
  guardUndecodableBatches();
  const logger = opts.logger ?? createLogger(service, config.log);
  const registry = opts.registry ?? createRegistry(service);
  const kafka = createKafka(config.kafka, service, logger);
  if (config.kafka.createTopics) {
    const admin = kafka.admin();
    await admin.connect();
    try {
      const created = await ensureTopics(admin, topicSpecs(config.kafka.partitions, { maxMessageBytes: config.renderer.maxMessageBytes }), config.kafka.replicationFactor);
      if (created.length > 0) logger.info({ topics: created }, 'created topics');
    } finally {
      await admin.disconnect();
    }
  }
  let connected = true;
  // A new producer replaces the current one when a merged batch was partly refused (see BatchingProducer `renew`).
  const newProducer = async (): Promise<Producer> => {
    const p = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    p.on('producer.disconnect', () => {
      if (p === rawProducer) connected = false;
    });
    p.on('producer.connect', () => {
      if (p === rawProducer) connected = true;
    });
    await p.connect();
    return p;
  };
  let rawProducer: Producer | undefined;
  rawProducer = await newProducer();
  const producerOptions = { lingerMs: config.kafka.producerLingerMs, ...opts.producer };
  const producer = new BatchingProducer(rawProducer, {
    ...producerOptions,
    renew: async () => {
      rawProducer = await newProducer();
      connected = true;
      return rawProducer;
    },
  });
  const shutdown = new Shutdown(logger);
  const events = new EventPublisher(producer, service);
  instrumentEvents(events, registry);
  const readiness: Record<string, ReadinessCheck> = { kafkaProducer: () => (connected ? null : 'producer disconnected') };
  const liveness: Record<string, () => string | null> = {};
  const onDead = opts.onConsumerDead ?? (process.env.POSTLINE_SUPERVISED === '1' ? exitForRestart(logger, () => shutdown.run(), config.ops.shutdownGraceMs) : undefined);
  let stopWatching: (() => void) | undefined;
  let ops: FastifyInstance | undefined;
  const dedicated: Array<{ producer: BatchingProducer; raw: () => Producer }> = [];
  return {
    service,
    config,
    logger,
    registry,
    kafka,
    producer,
    events,
    shutdown,
    readiness,
    liveness,
    watchConsumer(name, consumer) {
      const watched = new ConsumerLiveness(consumer);
      // Consumers leave their groups while the stage stops: that is not a failure.
      liveness[name] = () => (shutdown.started ? null : watched.problem(config.ops.consumerGraceMs));
      if (onDead && !stopWatching) stopWatching = watchLiveness({ checks: liveness, onDead });
    },
    async dedicatedProducer() {
      const connect = async (): Promise<Producer> => {
        const p = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
        await p.connect();
        return p;
      };
      let raw = await connect();
      const own = new BatchingProducer(raw, { ...producerOptions, renew: async () => (raw = await connect()) });
      dedicated.push({ producer: own, raw: () => raw });
      const ownEvents = new EventPublisher(own, service);
      instrumentEvents(ownEvents, registry);
      return { producer: own, events: ownEvents };
    },
    async startOps(routes) {
      ops = buildOpsApp({ registry, readiness, liveness });
      routes?.(ops);
      const address = await ops.listen({ host: config.ops.host, port: config.ops.port });
      logger.info({ ops: address }, 'ops server listening');
      return address;
    },
    addFinalShutdownSteps() {
      shutdown.add('stop liveness watch', () => stopWatching?.());
      shutdown.add('drain producers', () => Promise.all([producer, ...dedicated.map((d) => d.producer)].map((p) => p.drain())));
      shutdown.add('disconnect producers', () => Promise.all([rawProducer, ...dedicated.map((d) => d.raw())].map((p) => p?.disconnect())));
      shutdown.add('close ops server', () => ops?.close());
    },
  };
}

/** The validated configuration, or every bad key on stderr and exit 2 (`label` names the command). */
export function loadConfigOrExit(label: string): PostlineConfig {
  try {
    return loadPostlineConfig();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`postline ${label}: ${err.message}\n`);
    process.exit(2);
  }
}

/** `start()`'s result; a ConfigError it throws (an option checked only while building parts) is printed and exits 2. */
export async function startedOrExit<T>(label: string, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (err) {
    // Some options are only checked when the stage builds its parts (e.g. a templates directory).
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`postline ${label}: ${err.message}\n`);
    process.exit(2);
  }
}

/**
 * The body of every stage's `main()`: load and validate config (printing every bad key and
 * exiting 2 when it is wrong), start the stage, and shut it down in order on SIGTERM/SIGINT.
 * Several stages in one process: services/embedded/stage-host.ts.
 */
export async function serviceMain(name: string, start: (config: PostlineConfig) => Promise<{ shutdown: Shutdown }>): Promise<void> {
  const config = loadConfigOrExit(name);
  // First, so the HTTP and Kafka hops of this process are traced (a no-op unless enabled).
  const tracing = initTracing(name, config.tracing);
  const started = await startedOrExit(name, () => start(config));
  started.shutdown.add('flush traces', () => tracing.shutdown());
  started.shutdown.installSignalHandlers(config.ops.shutdownGraceMs);
  // A fixed line supervisors (npm start, tests) wait for.
  createLogger(name, config.log).info({ pid: process.pid }, 'service ready');
}
