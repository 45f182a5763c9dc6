/**
 * `postline dispatcher`, and `startDispatcher` for in-process use (tests, tools): wires one
 * StageConsumer per priority topic (own group, own concurrency) to the dispatch handler, the
 * SMTP fleets behind a circuit breaker per host, the delivery ledger (seeded from the recent
 * tail of email.events before consuming starts), the producer for events and retry records,
 * the traffic shaper (warm-up counts, every replica's pause/resume events and the sending
 * domains' outcomes from a tail of today's events, read before consuming starts; its back-off
 * resizing the (source, site) connection budgets; its transitions published as events; its
 * pause/resume routes on the ops server), one partition assigner for the three groups (partition
 * p of every priority to the same process), and metrics. Shutdown: stop consumers → wait for
 * in-flight sends → close the shaper → stop the warm-up tail → close fleets (QUIT) →
 * disconnect consumers → drain the producer → disconnect it → close the ops server.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { PartitionAssigners } from 'kafkajs';
import type { Registry } from 'prom-client';
import { PRIORITIES, PostlineConfigSchema, type PostlineConfig, type Priority } from '../../shared/config.js';
import { ConfigError, describeOptions } from '../../shared/config-loader.js';
import { StageConsumer } from '../../shared/kafka/stage-consumer.js';
import type { Shutdown } from '../../shared/lifecycle.js';
import type { Logger } from '../../shared/logger.js';
import { instrumentStageConsumer } from '../../shared/metrics.js';
import type { ReadinessCheck } from '../../shared/ops-server.js';
import { retryPolicy } from '../../shared/retry-policy.js';
import { serviceMain, startRuntime, type RuntimeOptions } from '../../shared/service-runtime.js';
import { Topics } from '../../shared/topics.js';
import { DispatchHandler } from './dispatch-handler.js';
import { instrumentDispatcher } from './dispatcher-metrics.js';
import { DeliveryLedger } from './delivery-ledger.js';
import { DuplicateWindow } from './duplicate-window.js';
import { FleetRegistry } from './fleet-registry.js';
import { BreakerRegistry, type BreakerState } from './host-breaker.js';
import { seedLedger } from './ledger-seed.js';
import { processAlignedAssigner } from './partition-assigner.js';
import type { PendingOutcome } from './outcome-writer.js';
import { relayRoute, type Route, type RoutingTable, type SmtpTarget } from './route.js';
import type { FleetOptions } from './smtp-fleet.js';
import { SiteBudget } from './site-budget.js';
import { DnsResolver } from './routing/dns-resolver.js';
import { MtaStsPolicies } from './routing/mta-sts.js';
import { MxRouter } from './routing/mx-router.js';
import { loadRoutingFile, poolsBySource, warmupPlans, type RoutingFile } from './routing/routes-file.js';
import { instrumentRouting } from './routing/routing-metrics.js';
import { createShaper, type Shaper, type TrafficShaper } from './shaping/shaper.js';
import { loadShapingRules } from './shaping/shaping-rules.js';
import { shippedBounceClassifier } from '../../shared/bounces/classify.js';
import type { WarmupPlan } from './shaping/warmup.js';
import { SharedSentCounter, startSentTail, type SentTail } from './shaping/sent-tail.js';
import { instrumentShaper } from './shaping/shaping-metrics.js';
import { logShaping } from './shaping/shaping-log.js';
import { registerSourceRoutes } from './shaping/source-routes.js';
import { createSuppressionIndex, type SuppressionIndex } from '../../shared/suppressions/suppression-index.js';
import { createSuppressionFeeder, type RunningFeeder } from '../suppressions/feeder.js';
import { instrumentSuppressions } from '../suppressions/suppression-metrics.js';
import { applyTailEvent, publishShaperEvents } from './shaping/ops-events.js';
import { fetchMaxWait } from '../../shared/kafka/client.js';

export const STAGE = 'dispatcher';

export interface DispatcherOptions extends RuntimeOptions {
  /** Start the ops server (/metrics, /healthz, /readyz) on config.ops (default true). */
  ops?: boolean;
  /** Replaces how fleets open connections (tests); the host's circuit breaker still wraps it. */
  connect?: FleetOptions['connect'];
  /** Replaces the traffic shaper of mx routes (tests); default: the shaping file's, see createShaper. */
  shaper?: Shaper;
}

export interface RunningDispatcher {
  /** Ordered shutdown; safe to call twice. Resolves true when every step succeeded. */
  close(): Promise<boolean>;
  shutdown: Shutdown;
  registry: Registry;
  fleets: FleetRegistry;
  breakers: BreakerRegistry;
  handler: DispatchHandler;
  /** With a routing file: its DNS resolver (cache, query counts). */
  resolver?: DnsResolver;
  /** The traffic shaper of mx routes (the one given in the options, else the dispatcher's own). */
  shaper: Shaper;
  /** Connection budgets per (source address, site), keyed `source\u0000site`. */
  budgets: ReadonlyMap<string, SiteBudget>;
  /** The ops server's address, when started. */
  opsAddress?: string;
  /** The suppression list as this dispatcher reads it (absent when neither enforced nor fed). */
  suppressions?: SuppressionIndex;
  /** This dispatcher's id in its consumer groups' member metadata (partition-assigner.ts). */
  processId: string;
}

type DispatcherConfig = PostlineConfig['dispatcher'];

/**
 * A host's fleet options: every new connection goes through the host's breaker. A fleet of an
 * mx route (one source address to one MX host) opens no warm connections, takes its messages per
 * connection from the shaper's limits for its (source, site), and draws its connections from the
 * (source, site)'s budget, whose size is the shaper's connection limit.
 */
function fleetOptions(d: DispatcherConfig, target: SmtpTarget, breakers: BreakerRegistry, shaper: Shaper, budgets: Map<string, SiteBudget>, connect?: FleetOptions['connect']): FleetOptions {
  const breaker = breakers.get(target.breakerKey ?? target.key);
  const open = connect ?? ((c) => c.open());
  const limits = target.shaping ? shaper.limits(target.shaping) : undefined;
  let budget: SiteBudget | undefined;
  if (target.shaping && limits) {
    // One connection budget per (source, site), shared by the fleets of the site's MX hosts.
    const key = `${target.shaping.source}\u0000${target.shaping.site}`;
    budget = budgets.get(key);
    if (!budget) budgets.set(key, (budget = new SiteBudget(key, Math.max(1, Math.min(d.fleet.maxConnectionsPerHost, limits.maxConnections)), Number.isFinite(limits.maxMessagesPerConnection) ? limits.maxMessagesPerConnection : undefined)));
  }
  return {
    warm: limits ? 0 : d.fleet.warmConnections,
    max: Math.max(1, Math.min(d.fleet.maxConnectionsPerHost, limits?.maxConnections ?? Number.POSITIVE_INFINITY)),
    ...(budget ? { budget } : {}),
    ...(limits && Number.isFinite(limits.maxMessagesPerConnection) ? { maxMessagesPerConnection: limits.maxMessagesPerConnection } : {}),
    reserve: { critical: d.fleet.reserveCritical, transactional: d.fleet.reserveTransactional },
    idleTimeoutMs: d.fleet.idleTimeoutMs,
    ceilingCooldownMs: d.fleet.ceilingCooldownMs,
    acquireTimeoutMs: d.fleet.acquireTimeoutMs,
    timeouts: { connectionTimeoutMs: d.connectionTimeoutMs, greetingTimeoutMs: d.greetingTimeoutMs, socketTimeoutMs: d.socketTimeoutMs },
    connect: (c) => breaker.run(() => open(c)),
    canConnect: () => breaker.allowsConnect,
  };
}

/** Logs breaker transitions and starts the half-open probe (no message waits on it). */
function watchBreakers(breakers: BreakerRegistry, fleets: FleetRegistry, logger: Logger, halfOpenAfterMs: number): void {
  breakers.on('transition', (host: string, from: BreakerState, to: BreakerState, failures: number) => {
    if (to === 'open') logger.warn({ host, from, failures, probeInMs: halfOpenAfterMs }, 'circuit breaker opened: no new connections to this host; traffic goes to the next host of the route');
    else if (to === 'half-open') logger.info({ host, from }, 'circuit breaker half-open: probing with one connection');
    else logger.info({ host, from }, 'circuit breaker closed: host reachable again');
    if (to === 'half-open') fleets.probe(host);
  });
}

const concurrencyOf = (d: DispatcherConfig, p: Priority): number =>
  p === 'critical' ? d.concurrencyCritical : p === 'transactional' ? d.concurrencyTransactional : d.concurrencyBulk;

/** Logs fleet life-cycle events; the returned check says whether any relay host is reachable. */
function watchFleets(fleets: FleetRegistry, logger: Logger, relayHosts: ReadonlySet<string>): ReadinessCheck {
  const unreachable = new Map<string, string>();
  fleets.on('opened', (host: string, conn: { id: number }) => {
    unreachable.delete(host);
    logger.debug({ host, connection: conn.id }, 'SMTP connection opened');
  });
  fleets.on('closed', (host: string, conn: { id: number }, reason: string, err?: Error) => {
    const quiet = reason === 'idle' || reason === 'shutdown';
    logger[quiet ? 'debug' : 'info']({ host, connection: conn.id, reason, err: err?.message }, 'SMTP connection closed');
  });
  fleets.on('connect-failed', (host: string, err: Error & { code?: string }) => {
    unreachable.set(host, err.message);
    logger.warn({ host, code: err.code, err: err.message }, 'SMTP connection failed');
  });
  fleets.on('ceiling', (host: string, cap: number, until: number) =>
    logger.warn({ host, cap, until: new Date(until).toISOString() }, 'SMTP host refused more connections; fleet capped'),
  );
  // Only the relay decides readiness: one MX host among thousands being down says nothing.
  return () => {
    const stats = fleets.stats().filter((s) => relayHosts.has(s.host));
    if (stats.length === 0 || stats.some((s) => s.size > 0 || !unreachable.has(s.host))) return null;
    return `no SMTP host reachable: ${[...unreachable].map(([h, m]) => `${h} (${m})`).join(', ')}`;
  };
}

/** Starts the dispatcher against Kafka and the configured relay. */
export async function startDispatcher(config: PostlineConfig, opts: DispatcherOptions = {}): Promise<RunningDispatcher> {
  const d = config.dispatcher;
  const file: RoutingFile | undefined = d.routesFile ? loadRoutingFile(d.routesFile) : undefined;
  // Read once, before any connection: the shaper limits by them and the handler checks record keys by them.
  const shapingRules = loadShapingRules(d.shapingFile);
  // The bounce rule table too: a missing or bad table fails the start, not the first bounce.
  shippedBounceClassifier();
  const usesRelay = !file || Object.values(file.routes).some((r) => r.kind === 'relay');
  if (usesRelay && !d.relay.host) throw new ConfigError([`POSTLINE_DISPATCHER_RELAY_HOST (dispatcher.relay.host): a relay host is required${file ? ' (the routing file has a relay route)' : ''}`]);
  const rt = await startRuntime(STAGE, config, opts);
  const { logger, registry, shutdown } = rt;
  // The first outcome after a start should not pay for kafkajs's metadata fetch of email.events.
  await rt.producer.warm([Topics.events]);
  const relay: Route | undefined = usesRelay ? relayRoute(d.relay) : undefined;
  const routing: RoutingTable = { relay: relay ?? { name: 'relay', hosts: [] } };
  // The shaper acts on mx routes only: relay targets carry no shaping key, so relay traffic is
  // admitted, limited and counted exactly as before (the relay shapes its own onward traffic).
  const plans = file ? warmupPlans(file) : new Map<string, WarmupPlan>();
  // Complaints that name a source address (ARF Source-IP) count for it and its pools.
  const sourcePools = file ? poolsBySource(file) : new Map<string, string[]>();
  // With warm-up plans, every replica counts today's `sent` events of all replicas (a tail of email.events).
  const counter = !opts.shaper && plans.size > 0 ? new SharedSentCounter() : undefined;
  const own: TrafficShaper | undefined = opts.shaper ? undefined : createShaper(d, { rules: shapingRules, warmup: plans, ...(counter ? { counter } : {}), poolsOf: (source) => sourcePools.get(source) });
  const shaper: Shaper = opts.shaper ?? own!;
  const breakers = new BreakerRegistry(d.breaker);
  const budgets = new Map<string, SiteBudget>();
  const fleets = new FleetRegistry((target) => fleetOptions(d, target, breakers, shaper, budgets, opts.connect));
  rt.readiness.relay = watchFleets(fleets, logger, new Set(routing.relay.hosts.map((h) => h.key)));
  watchBreakers(breakers, fleets, logger, d.breaker.halfOpenAfterMs);
  let router: MxRouter | undefined;
  let resolver: DnsResolver | undefined;
  let mtaSts: MtaStsPolicies | undefined;
  if (file) {
    resolver = new DnsResolver({ servers: file.dns.servers, timeoutMs: file.dns.timeoutMs, ttlFloorSeconds: file.dns.ttlFloorSeconds, ttlCeilingSeconds: file.dns.ttlCeilingSeconds });
    mtaSts = new MtaStsPolicies({ lookup: resolver.lookupFunction(), negativeTtlMs: Math.max(60, file.dns.ttlFloorSeconds) * 1000 });
    mtaSts.on('violation', (domain: string, host: string, mode: string) =>
      logger[mode === 'enforce' ? 'info' : 'warn']({ domain, host, mode }, mode === 'enforce' ? 'MTA-STS: MX host not in the policy; not used' : 'MTA-STS (testing): MX host not in the policy; delivered anyway'),
    );
    router = new MxRouter({ file, relay, resolver, mtaSts, shaper });
  }
  const ledger = new DeliveryLedger<PendingOutcome>(d.dedupe.maxEntries);
  // The suppression list: read to its end before anything is sent (below), then kept live.
  const sup = config.suppressions;
  const suppression = sup.enforce || sup.feeder ? createSuppressionIndex({ kafka: rt.kafka, logger }) : undefined;
  // Critical outcomes get a producer (and connection) of their own: one idempotent producer
  // sends one request at a time, and they must not queue behind bulk's batches.
  const critical = await rt.dedicatedProducer();
  const handler = new DispatchHandler({
    events: rt.events,
    producer: rt.producer,
    producerFor: (p) => (p === 'critical' ? critical.producer : undefined),
    fleets,
    routing,
    router,
    shaper,
    // The rules the renderer keys mx-route records by (site, or a shard of a hot site).
    ...(file ? { shapingRules } : {}),
    retryPolicy: retryPolicy(config.retry),
    logger,
    ledger,
    bulkYieldMs: d.bulkYieldMs,
    sendSlots: Object.fromEntries(PRIORITIES.map((p) => [p, concurrencyOf(d, p)])),
    ...(suppression && sup.enforce ? { suppressions: suppression.index } : {}),
  });
  const feeder: RunningFeeder | undefined =
    suppression && sup.feeder
      ? createSuppressionFeeder({ kafka: rt.kafka, groupId: sup.feederGroupId, deadLetters: rt.events, index: suppression.index, producer: rt.producer, logger, softBounceDays: sup.softBounceDays })
      : undefined;

  const seed: { read: Promise<void>; done: boolean } = { read: Promise.resolve(), done: false };
  // Partition p of every priority's topic goes to the same process (partition-assigner.ts), so a
  // site keyed to p has one owner whose limits hold across priorities. Round robin stays listed
  // so that a group mixing this release with an older one during a rolling upgrade still forms.
  const processId = `${hostname()}/${process.pid}/${randomUUID()}`;
  const partitionAssigners = [processAlignedAssigner(processId), PartitionAssigners.roundRobin];
  const consumers = PRIORITIES.map((p) => rt.kafka.consumer({ groupId: `${d.groupId}-${p}`, maxWaitTimeInMs: fetchMaxWait({ fetchMaxWaitMs: d.fetchMaxWaitMs, sessionTimeoutMs: config.kafka.sessionTimeoutMs }), partitionAssigners }));
  consumers.forEach((c, i) => rt.watchConsumer(`consumer.${PRIORITIES[i]}`, c));
  const stages = PRIORITIES.map(
    (p, i) =>
      new StageConsumer({
        consumer: consumers[i],
        topics: [Topics.dispatch(p)],
        // A record is in flight while it is sent and then while its outcome is made durable (a
        // produce round trip and the broker's fsync): twice the send slots let the next records
        // start sending meanwhile. Bounded because every record in flight holds its MIME.
        concurrency: 2 * concurrencyOf(d, p),
        maxInFlightBytes: d.maxInFlightBytes,
        commitIntervalMs: d.commitIntervalMs,
        // Nothing is sent before the ledger knows the recent outcomes (see below).
        handle: (r) => (seed.done ? handler.handle(r) : seed.read.then(() => handler.handle(r))),
        deadLetters: rt.events,
        logger: logger.child({ priority: p }),
      }),
  );
  // instrumentStageConsumer registers its metrics once per registry: feed it all three consumers.
  const stageEvents = new EventEmitter();
  for (const s of stages) for (const e of ['processed', 'failed', 'deadLettered', 'committed', 'lag']) s.on(e, (...a: unknown[]) => stageEvents.emit(e, ...a));
  instrumentStageConsumer(STAGE, stageEvents as unknown as StageConsumer, registry);
  const window = new DuplicateWindow();
  handler.on('verdict', (topic: string, partition: number, offset: string, verdictAt: number, durableAt: number) => window.verdict(topic, partition, offset, verdictAt, durableAt));
  stageEvents.on('committed', (topic: string, partition: number, offset: string) => window.committed(topic, partition, offset));
  instrumentDispatcher(registry, { handler, fleets, breakers, window });
  if (suppression) instrumentSuppressions(registry, { handler, ...(feeder ? { feeder: feeder.feeder } : {}), index: suppression.index });
  if (resolver && mtaSts) instrumentRouting(registry, { resolver, mtaSts, fleets, handler });
  if (own) {
    instrumentShaper(registry, own);
    logShaping(logger, own);
    // Pauses and back-off go on email.events; every replica applies the pauses it reads (below).
    publishShaperEvents(own, (e) => rt.events.publish(e), logger);
    // Adaptive back-off reaches the connections: the (source, site)'s budget follows the limit.
    own.on('shaping-change', (e) => {
      const budget = budgets.get(`${e.source}\u0000${e.site}`);
      if (!budget) return;
      const limits = own.limits({ source: e.source, site: e.site, domain: '' });
      budget.set(Math.max(1, Math.min(d.fleet.maxConnectionsPerHost, e.to.maxConnections)), limits.maxMessagesPerConnection);
    });
  }
  let tail: SentTail | undefined;

  let consuming = false;
  rt.readiness.consumers = () => (consuming ? null : 'consumers not running');
  shutdown
    .add('stop consumers', async () => {
      consuming = false;
      await Promise.all(stages.map((s) => s.stop()));
    })
    .add('finish in-flight sends', () => handler.drain())
    .add('close traffic shaper', () => own?.close())
    .add('stop warm-up tail', () => tail?.stop())
    .add('close SMTP fleets', () => fleets.close())
    .add('stop circuit breakers', () => breakers.shutdown())
    // Together (each waits out its fetch in flight): the lanes' consumers, the feeder, the index.
    .add('disconnect consumers, stop suppression feeder and index', () => Promise.all([...consumers.map((c) => c.disconnect()), feeder?.stop(), suppression?.table.stop()]));
  rt.addFinalShutdownSteps();

  let opsAddress: string | undefined;
  try {
    if (relay) fleets.warm(relay.hosts.slice(0, 1));
    // Warm-up counts: today's `sent` events of every replica, read up to their end before
    // anything is sent, with the same bound as the ledger read. A tail that cannot catch up in
    // time leaves this replica counting from what it has read (a cap may then be passed by what
    // it missed) rather than not sending at all; it keeps reading.
    // The same tail carries the pauses of every replica and the sending domains' outcomes (ops-events.ts).
    const warmupRead = own
      ? (async () => {
          const started = performance.now();
          tail = await startSentTail({ kafka: rt.kafka, ...(counter ? { counter } : {}), onEvent: (e) => applyTailEvent(own, e), logger, groupPrefix: d.groupId }, d.dedupe.seedTimeoutMs);
          const complete = await tail.caughtUp;
          logger[complete ? 'info' : 'warn'](
            { ms: Math.round(performance.now() - started), complete, sources: plans.size },
            complete ? 'warm-up counts and pauses read (today\'s events of every replica)' : 'warm-up counts and pauses incomplete: today\'s events not read to their end in time; a cap may be passed or a pause missed by what was not read',
          );
        })()
      : Promise.resolve();
    // The start-up read of recent outcomes (it grows with the events in its window) and the
    // consumer group joins run side by side; records fetched before the read is done wait for
    // it in the handler (above), so none is sent without the ledger.
    const ledgerRead = seedLedger({ kafka: rt.kafka, ledger, windowMs: d.dedupe.seedWindowMs, timeoutMs: d.dedupe.seedTimeoutMs, stage: STAGE, groupPrefix: d.groupId, logger }).then((r) => {
      logger[r.complete ? 'info' : 'warn']({ events: r.events, remembered: r.remembered, ms: Math.round(r.ms), complete: r.complete }, 'recent delivery outcomes read (duplicate suppression)');
    });
    const suppressionRead = suppression
      ? (async () => {
          const started = performance.now();
          await suppression.table.start(sup.loadTimeoutMs);
          logger.info({ entries: suppression.index.size, ms: Math.round(performance.now() - started) }, 'suppression list read');
          // The feeder checks what is already suppressed, so it starts on the loaded list.
          await feeder?.start();
        })()
      : Promise.resolve();
    seed.read = Promise.all([ledgerRead, warmupRead, suppressionRead]).then(() => {
      seed.done = true;
    });
    await Promise.all([
      seed.read,
      (async () => {
        await Promise.all(consumers.map((c) => c.connect()));
        // The three groups join side by side (a join waits out the group's rebalance).
        await Promise.all(stages.map((s) => s.start()));
      })(),
    ]);
    consuming = true;
    if (opts.ops !== false) opsAddress = await rt.startOps(own ? (app) => registerSourceRoutes(app, own) : undefined);
  } catch (err) {
    await shutdown.run();
    throw err;
  }
  logger.info(
    { route: file ? Object.keys(file.routes).join(',') : 'relay', routesFile: d.routesFile || undefined, host: routing.relay.hosts.map((h) => h.key).join(','), concurrency: PRIORITIES.map((p) => `${p}=${concurrencyOf(d, p)}`).join(' ') },
    'dispatcher running',
  );
  return { close: () => shutdown.run(), shutdown, processId, registry, fleets, breakers, handler, shaper, budgets, ...(resolver ? { resolver } : {}), ...(opsAddress ? { opsAddress } : {}), ...(suppression ? { suppressions: suppression.index } : {}) };
}

const HELP = `usage: postline dispatcher [--help]

Consumes email.dispatch.{critical,transactional,bulk} and sends each message to the configured
SMTP relay over pooled connections. Configured by environment variables (or POSTLINE_CONFIG);
\`postline config\` lists every option. The dispatcher's own:

${describeOptions(PostlineConfigSchema)
  .filter((o) => o.path.startsWith('dispatcher.'))
  .map((o) => `  ${o.env.padEnd(52)} default ${JSON.stringify(o.default)}`)
  .join('\n')}
`;

/** `postline dispatcher`: runs until SIGTERM/SIGINT, then shuts down in order. */
export async function main(argv: string[] = []): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { help: { type: 'boolean', short: 'h', default: false } }, strict: true });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  await serviceMain(STAGE, async (config) => {
    try {
      return await startDispatcher(config);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      process.stderr.write(`postline ${STAGE}: ${err.message}\n`);
      process.exit(2);
    }
  });
}
