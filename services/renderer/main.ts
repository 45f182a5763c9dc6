/**
 * `postline renderer`: wires the render stage — the shared runtime (config, logger, metrics,
 * Kafka, producer, events, ops server), the template repository (directory +
 * `email.templates`), the dispatch topics' real size limits, and one Renderer and consumer
 * per lane — and its ordered shutdown. `startRenderer` is also used in-process by `npm start`
 * and the tests.
 *
 * Lanes: each priority's request topic (`email.requested.<priority>`) and the shared
 * `email.requested` are consumed by their own consumer group with their own concurrency, so a
 * bulk backlog never sits in front of a critical message in a partition or a semaphore; the
 * critical lane also produces through its own producer (one idempotent producer has one request
 * in flight, and critical records must not queue behind bulk's batches).
 *
 * DKIM: with `renderer.dkim.keysDir` set, the keys are read before anything starts (a bad key
 * or an unreadable directory refuses start-up, listing every problem) and re-read on change;
 * a problem found while running is logged and counted, and the keys read before stay in use.
 * The sender-domain policy is `ingest.senderDomains`, the same configuration the API checks.
 *
 * Feedback: with a feedback key (`feedback.keys` / `keysFile`), each recipient gets its own copy
 * with signed X-Postline-Ref, return path and List-Unsubscribe (feedback-copies.ts); a bad keys
 * file, return-path domain or unsubscribe URL refuses start-up.
 *
 * Site keys: with `dispatcher.routesFile` set, the routing file and the shaping rules
 * (`dispatcher.shapingFile`) are read at start (bad ones refuse start-up, as the dispatcher
 * does) and dispatch records of mx-route messages are keyed by site (site-keying.ts).
 */
import { EventEmitter } from 'node:events';
import { parseArgs } from 'node:util';
import type { Consumer, Kafka } from 'kafkajs';
import { PRIORITIES, type PostlineConfig } from '../../shared/config.js';
import type { Shutdown } from '../../shared/lifecycle.js';
import type { Logger } from '../../shared/logger.js';
import { ConfigError } from '../../shared/config-loader.js';
import { instrumentStageConsumer } from '../../shared/metrics.js';
import { Topics, recordLimitFor } from '../../shared/topics.js';
import { warmUpMime } from './mime-message.js';
import type { StageConsumer } from '../../shared/kafka/stage-consumer.js';
import { serviceMain, startRuntime, type RuntimeOptions } from '../../shared/service-runtime.js';
import { loadTemplateDirectory, type DirectoryTemplates } from '../../shared/templates/template-directory.js';
import { openTemplateRepository, type TemplateRepository } from '../../shared/templates/template-repository.js';
import { CriticalActivity } from '../../shared/critical-activity.js';
import { Renderer } from './renderer.js';
import { instrumentKeyStore, instrumentRenderer, instrumentSiteKeys } from './renderer-metrics.js';
import { loadRoutingFile, type RoutingFile } from '../dispatcher/routing/routes-file.js';
import { loadShapingRules, type ShapingRules } from '../dispatcher/shaping/shaping-rules.js';
import { openSiteKeys, siteRecordKeys, type RecordKeys } from './site-keying.js';
import { DkimKeyStore } from '../../shared/dkim/key-store.js';
import { configuredSenderDomains, withAdministeredDomains } from '../../shared/sender-domains.js';
import { openAdminDirectory } from '../../shared/admin/open-admin-directory.js';
import type { DkimPolicy } from './message-signing.js';
import { readTopicLimits, type TopicLimits } from './topic-limits.js';
import { RENDERER_GROUP_PREFIX, groupMembership, laneStage, rendererLanes } from './render-lanes.js';
import { loadFeedbackKeyring } from '../../shared/feedback/feedback-keys.js';
import { feedbackConfigProblems, feedbackPolicy, type FeedbackPolicy } from './feedback-copies.js';
import { trackingConfigProblems, trackingPolicy, type TrackingPolicy } from './tracking-rewrite.js';

/** The shared lane's group, and the prefix of the priority lanes' groups. */
export const RENDERER_GROUP = RENDERER_GROUP_PREFIX;

export { rendererLanes, type RendererLane } from './render-lanes.js';

export interface RendererOptions extends RuntimeOptions {
  /** Consumer group prefix (default `postline-renderer`); tests use their own. */
  groupId?: string;
  /** Serve /metrics, /healthz, /readyz on `config.ops` (default true). */
  ops?: boolean;
  /** Longest wait for a domain's MX answer when keying by site (default 1000 ms); then the domain is the key. */
  siteKeyWaitMs?: number;
  /**
   * Take every partition of the renderer's groups while this renderer is a member (the second
   * renderer `postline start` adds under a backlog; shared/kafka/preferred-assigner.ts).
   */
  preferred?: boolean;
}

export interface RunningRenderer {
  /** Ordered shutdown; safe to call twice. Resolves true when every step succeeded. */
  close(): Promise<boolean>;
  shutdown: Shutdown;
  /** `http://host:port` of the ops server ('' without one). */
  opsAddress: string;
  templates: TemplateRepository;
  /** Re-reads the templates directory now; resolves with its problems (then the old set stays). */
  reloadTemplates(): Promise<string[]>;
  /** `max.message.bytes` of the dispatch topics the renderer checks records against. */
  dispatchLimits: TopicLimits;
  /** The DKIM keys (undefined without `renderer.dkim.keysDir`). */
  dkimKeys?: DkimKeyStore;
  /** Every lane's StageConsumer events ('processed', 'lag', 'rebalanced', ...), as its metrics read them. */
  consumerEvents: EventEmitter;
}

/** The keys directory, read once; every problem refuses start-up like bad config. */
async function openKeyStore(config: PostlineConfig): Promise<DkimKeyStore | undefined> {
  const { keysDir, rescanMs } = config.renderer.dkim;
  if (!keysDir) return undefined;
  const store = new DkimKeyStore({ dir: keysDir, rescanMs });
  try {
    await store.start();
  } catch (err) {
    store.close();
    throw new ConfigError([`POSTLINE_RENDERER_DKIM_KEYS_DIR (${keysDir}): cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`]);
  }
  if (store.issues.length > 0) {
    store.close();
    throw new ConfigError(store.issues.map((i) => `POSTLINE_RENDERER_DKIM_KEYS_DIR: ${i}`));
  }
  return store;
}

/** The routing file and shaping rules when `dispatcher.routesFile` is set (bad ones throw ConfigError). */
function readSiteKeyConfig(config: PostlineConfig): { routing: RoutingFile; rules: ShapingRules } | undefined {
  const { routesFile, shapingFile } = config.dispatcher;
  if (!routesFile) return undefined;
  return { routing: loadRoutingFile(routesFile), rules: loadShapingRules(shapingFile) };
}

/**
 * Feedback copies (X-Postline-Ref, List-Unsubscribe, signed return paths) when `feedback.keys`
 * (or `keysFile`) holds a key; a bad keys file, return-path domain or unsubscribe URL refuses
 * start-up (ConfigError).
 */
function readFeedbackPolicy(config: PostlineConfig): FeedbackPolicy | undefined {
  const problems = feedbackConfigProblems(config.feedback);
  if (problems.length > 0) throw new ConfigError(problems);
  return feedbackPolicy(loadFeedbackKeyring(config.feedback), config.feedback, config.renderer.unsubscribe, config.providerFeedback.espHeaders);
}

/** Tracking (tracking-rewrite.ts) with feedback on and `tracking.baseUrl` or `domains` set; bad URLs refuse start-up. */
function readTrackingPolicy(config: PostlineConfig, feedback: FeedbackPolicy | undefined): TrackingPolicy | undefined {
  const problems = trackingConfigProblems(config.tracking);
  if (problems.length > 0) throw new ConfigError(problems);
  return feedback ? trackingPolicy(feedback.keyring, config.tracking, config.feedback.unsubscribeUrl) : undefined;
}

async function readDirectory(dir: string): Promise<{ directory?: DirectoryTemplates; issues: string[] }> {
  if (!dir) return { issues: [] };
  const { directory, issues } = await loadTemplateDirectory(dir);
  return issues.length > 0 ? { issues } : { directory, issues };
}

/**
 * How long start-up (and each directory reload) may spend compiling templates ahead of their
 * first message: a template's first compile costs ~5–30 ms, so this covers a few hundred.
 */
const TEMPLATE_WARM_BUDGET_MS = 1000;

/** Re-reads the directory into the repository; with any problem the previous set stays. */
function directoryReloader(templates: TemplateRepository, dir: string, logger: Logger): () => Promise<string[]> {
  return async () => {
    const next = await readDirectory(dir);
    if (next.directory) {
      // A changed template compiles now, not on its next message; an unchanged directory (most
      // of the 30 s re-reads) costs no walk over every tenant's templates.
      if (templates.setDirectory(next.directory)) {
        const warmed = await templates.warm(TEMPLATE_WARM_BUDGET_MS);
        if (warmed.compiled > 0) logger.info({ dir, ...warmed }, 'changed templates compiled');
      }
    } else if (next.issues.length > 0) logger.error({ dir, issues: next.issues }, 'templates directory has problems; keeping the previous templates');
    return next.issues;
  };
}

/** The dispatch topics' `max.message.bytes` from the broker, or what Postline creates them with. */
async function dispatchTopicLimits(kafka: Kafka, config: PostlineConfig, logger: Logger): Promise<TopicLimits> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const limits = await readTopicLimits({ admin, topics: PRIORITIES.map((p) => Topics.dispatch(p)), fallback: recordLimitFor(config.renderer.maxMessageBytes), logger });
    logger.info({ maxMessageBytes: limits.bytes, source: limits.source }, 'dispatch topic limits');
    return limits;
  } finally {
    await admin.disconnect();
  }
}

export async function startRenderer(config: PostlineConfig, opts: RendererOptions = {}): Promise<RunningRenderer> {
  const rc = config.renderer;
  // Bad templates are bad config: refuse to start, listing every problem (exit 2 from main).
  const initial = await readDirectory(rc.templatesDir);
  if (initial.issues.length > 0) throw new ConfigError(initial.issues.map((i) => `POSTLINE_RENDERER_TEMPLATES_DIR (${rc.templatesDir}): ${i}`));
  const siteKeyConfig = readSiteKeyConfig(config);
  const feedback = readFeedbackPolicy(config);
  const tracking = readTrackingPolicy(config, feedback);
  const dkimKeys = await openKeyStore(config);
  let rt;
  try {
    rt = await startRuntime('renderer', config, opts);
  } catch (err) {
    dkimKeys?.close();
    throw err;
  }
  const { logger } = rt;
  const state: { stages: StageConsumer[]; consumers: Consumer[]; stopTable?: () => Promise<void>; stopAdmin?: () => Promise<void>; reload?: NodeJS.Timeout } = { stages: [], consumers: [] };
  // Steps run in this order, each skipping what was never started, so a failed start-up
  // cleans up with the same code: stop fetching and drain in-flight records (they resolve
  // only once their produces are acked), then the table, then disconnect; the runtime's
  // final steps drain and disconnect the producer and close the ops server.
  rt.shutdown
    .add('stop reloading templates', () => clearInterval(state.reload))
    .add('stop watching DKIM keys', () => dkimKeys?.close())
    .add('stop consuming and drain in-flight records', () => Promise.all(state.stages.map((s) => s.stop())))
    // Together (each waits out its fetch in flight).
    .add('stop template and admin tables, disconnect consumers', () => Promise.all([state.stopTable?.(), state.stopAdmin?.(), ...state.consumers.map((c) => c.disconnect())]));
  rt.addFinalShutdownSteps();
  try {
    const opened = await openTemplateRepository({ kafka: rt.kafka, producer: rt.producer, logger, directory: initial.directory, cacheSize: rc.templateCacheSize });
    state.stopTable = opened.stop;
    const templates = opened.repository;
    const dispatchLimits = await dispatchTopicLimits(rt.kafka, config, logger);
    // The critical lane produces through its own producer: never behind bulk's batches.
    const critical = await rt.dedicatedProducer();
    // The first message after a start should not pay for kafkajs's metadata fetch of its topics.
    const produced = [...PRIORITIES.map((p) => Topics.dispatch(p)), Topics.events];
    const [, , , warmed] = await Promise.all([rt.producer.warm(produced), critical.producer.warm(produced), warmUpMime(), templates.warm(TEMPLATE_WARM_BUDGET_MS)]);
    logger.info(warmed, 'templates compiled ahead of their first message');
    // Every other lane steps aside while critical requests are rendered (one event loop, one CPU).
    const criticalActivity = new CriticalActivity(rc.yieldToCriticalMs);
    // instrumentRenderer and instrumentStageConsumer register their metrics once per registry: feed them every lane.
    const rendererEvents = new EventEmitter();
    const stageEvents = new EventEmitter();
    instrumentRenderer(rendererEvents, rt.registry);
    instrumentStageConsumer('renderer', stageEvents as unknown as StageConsumer, rt.registry);
    let dkim: DkimPolicy | undefined;
    if (dkimKeys) {
      instrumentKeyStore(dkimKeys, rt.registry);
      dkimKeys.on('issues', (issues: string[]) => logger.error({ dir: rc.dkim.keysDir, issues }, 'DKIM keys directory has problems; the keys read before stay in use'));
      dkimKeys.on('reloaded', (table: { domains: Map<string, unknown> }) => logger.debug({ dir: rc.dkim.keysDir, domains: table.domains.size }, 'DKIM keys read'));
      dkim = { keys: dkimKeys, missingKey: rc.dkim.missingKey };
    }
    // Sender domains added by administrators (email.admin) join the configured ones live.
    const admin = await openAdminDirectory({ kafka: rt.kafka, producer: rt.producer, logger, loadTimeoutMs: config.admin.loadTimeoutMs });
    state.stopAdmin = admin.stop;
    const senderDomains = withAdministeredDomains(configuredSenderDomains(config.ingest.senderDomains), admin.directory);
    let recordKeys: RecordKeys | undefined;
    if (siteKeyConfig) {
      const siteKeys = openSiteKeys(siteKeyConfig.routing, siteKeyConfig.rules, { maxWaitMs: opts.siteKeyWaitMs });
      instrumentSiteKeys(siteKeys, rt.registry);
      siteKeys.on('keyed', (k: { domain: string; outcome: string }) => {
        if (k.outcome === 'dns-failed' || k.outcome === 'timeout') logger.debug({ domain: k.domain, outcome: k.outcome }, 'keyed by domain: its site is unknown now');
      });
      recordKeys = siteRecordKeys(siteKeyConfig.routing, siteKeys);
      logger.info({ routesFile: config.dispatcher.routesFile, dnsServers: siteKeyConfig.routing.dns.servers }, 'dispatch records keyed by site');
    }
    const lanes = rendererLanes(opts.groupId ?? RENDERER_GROUP).map((lane) => {
      const own = lane.priority === 'critical' ? critical : rt;
      const renderer = new Renderer({
        templates,
        producer: own.producer,
        events: own.events,
        logger,
        limits: { maxRecordBytes: rc.maxRecordBytes, maxMessageBytes: rc.maxMessageBytes, dispatchTopicBytes: dispatchLimits.bytes },
        lane: lane.priority,
        dkim,
        senderDomains,
        recordKeys,
        feedback,
        tracking,
        schedule: config.schedule,
      });
      return laneStage({ kafka: rt.kafka, lane, renderer, critical: criticalActivity, deadLetters: own.events, concurrency: rc.concurrency, maxInFlightBytes: rc.maxInFlightBytes, logger, rendererEvents, stageEvents, preferred: opts.preferred });
    });
    state.consumers = lanes.map((l) => l.consumer);
    state.stages = lanes.map((l) => l.stage);
    rt.readiness.consumer = groupMembership(lanes);
    for (const l of lanes) rt.watchConsumer(l.lane.groupId, l.consumer);
    await Promise.all(state.consumers.map((c) => c.connect()));
    await Promise.all(state.stages.map((s) => s.start()));
    const reloadTemplates = directoryReloader(templates, rc.templatesDir, logger);
    if (rc.templatesDir && rc.templatesReloadMs > 0) {
      state.reload = setInterval(() => void reloadTemplates().catch((err) => logger.error({ err }, 'templates reload failed')), rc.templatesReloadMs).unref();
    }
    const opsAddress = opts.ops === false ? '' : await rt.startOps();
    logger.info(
      {
        groups: lanes.map((l) => l.lane.groupId),
        concurrency: rc.concurrency,
        templatesDir: rc.templatesDir || undefined,
        feedback: feedback ? { returnPathDomain: feedback.returnPathDomain || undefined, unsubscribeUrl: feedback.unsubscribeUrl || undefined } : 'off',
        tracking: tracking ? { baseUrl: tracking.baseUrl || undefined, opens: tracking.opens, clicks: tracking.clicks } : 'off',
      },
      'renderer running',
    );
    return { close: () => rt.shutdown.run(), shutdown: rt.shutdown, opsAddress, templates, reloadTemplates, dispatchLimits, dkimKeys, consumerEvents: stageEvents };
  } catch (err) {
    await rt.shutdown.run();
    throw err;
  }
}

const HELP = `usage: postline renderer [--help]

Consumes email.requested.<priority> (one consumer group per priority) and the shared
email.requested, renders templates and MIME, produces one record per recipient domain (per
recipient with feedback keys) to email.dispatch.<priority>. Configured by POSTLINE_* environment variables (and the
JSON file named by POSTLINE_CONFIG); the renderer's own options are POSTLINE_RENDERER_*.
`;

/** `postline renderer`: runs until SIGTERM/SIGINT, then shuts down in order within the grace period. */
export async function main(argv: string[] = []): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { help: { type: 'boolean', short: 'h', default: false } }, strict: true });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  await serviceMain('renderer', async (config) => {
    try {
      return await startRenderer(config);
    } catch (err) {
      // A bad templates or DKIM keys directory is reported like bad config: every problem, exit 2.
      if (!(err instanceof ConfigError)) throw err;
      process.stderr.write(`postline renderer: ${err.message}\n`);
      process.exit(2);
    }
  });
}
