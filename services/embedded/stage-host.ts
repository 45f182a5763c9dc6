/**
 * `postline stages renderer,dispatcher,...`: several stages in one Node process, sharing one
 * module graph (fastify, kafkajs, pino, the TypeScript loader) and one event loop. `postline
 * start` runs the stages this way (see main.ts); Kubernetes keeps one stage per pod
 * (`postline <stage>`), which behaves exactly as before.
 *
 * Each stage keeps what is its own: its configuration section, its Kafka clients and consumer
 * groups, its logger (`service` field), its metrics registry and ops server. What is process-wide
 * happens once: tracing, the signal handlers, the IPC watch on the supervisor. Stages start
 * together and stop together (each drains and commits through its own ordered shutdown).
 * A stage whose consumer dies stops the whole host, in order, and exits 1: the supervisor
 * restarts the process with every stage in it (Kafka commits after the side effect, so what was
 * in flight is redone, nothing accepted is lost).
 */
import type { EventEmitter } from 'node:events';
import { parseArgs } from 'node:util';
import type { Logger } from 'pino';
import type { PostlineConfig } from '../../shared/config.js';
import { Shutdown } from '../../shared/lifecycle.js';
import { createLogger } from '../../shared/logger.js';
import { exitForRestart, loadConfigOrExit, startedOrExit, type RuntimeOptions } from '../../shared/service-runtime.js';
import { initTracing } from '../../shared/tracing.js';
import { BacklogWatch, IdleExit, RENDER_BACKLOG_MSG } from './render-helper.js';

/** A running stage: what `postline <stage>` shuts down on SIGTERM. */
export interface HostedStage {
  shutdown: Shutdown;
  /** Its stage consumers' events ('processed', 'backlog', 'lag', 'rebalanced'), where the stage shares them (the renderer). */
  consumerEvents?: EventEmitter;
  /** 'accepted' (priority, scheduled) for each message it accepted, where the stage takes messages in (the ingest). */
  intake?: EventEmitter;
}

/** RuntimeOptions, and what a host asks of one stage in particular. */
type HostedStageOptions = RuntimeOptions & { preferred?: boolean };
type StageStart = (config: PostlineConfig, opts: HostedStageOptions) => Promise<HostedStage>;

/** Every stage a host can run; each module is loaded only when its stage is named. */
export const HOSTABLE_STAGES: Record<string, StageStart> = {
  analytics: async (c, o) => (await import('../analytics/main.js')).startAnalytics(c, { onConsumerDead: o.onConsumerDead }),
  renderer: async (c, o) => (await import('../renderer/main.js')).startRenderer(c, { onConsumerDead: o.onConsumerDead, preferred: o.preferred }),
  dispatcher: async (c, o) => (await import('../dispatcher/main.js')).startDispatcher(c, o),
  scheduler: async (c, o) => (await import('../scheduler/main.js')).startScheduler(c, o),
  ingest: async (c, o) => (await import('../ingest/main.js')).startIngest(c, o),
  inbound: async (c, o) => (await import('../inbound/main.js')).startInbound(c, o),
  tracker: async (c, o) => (await import('../tracker/main.js')).startTracker(c, o),
  'smtp-gateway': async (c, o) => (await import('../smtp-gateway/main.js')).startSmtpGateway(c, o),
  webhooks: async (c, o) => (await import('../webhooks/main.js')).startWebhooks(c, o),
};

/** Why a stage list cannot be hosted (an unknown or repeated name, or none). */
export class StageListError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StageListError';
  }
}

/** `renderer,dispatcher` → ['renderer', 'dispatcher'], in the order given; throws StageListError. */
export function parseStageList(arg: string | undefined): string[] {
  const names = (arg ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (names.length === 0) throw new StageListError('name at least one stage');
  const unknown = names.filter((n) => !(n in HOSTABLE_STAGES));
  if (unknown.length > 0) throw new StageListError(`unknown stage${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (one of ${Object.keys(HOSTABLE_STAGES).join(', ')})`);
  const repeated = names.filter((n, i) => names.indexOf(n) !== i);
  if (repeated.length > 0) throw new StageListError(`${repeated.join(', ')} named twice`);
  return names;
}

export interface StageHost {
  /** Stops every started stage, all at once; the same promise on later calls. Resolves true if all stopped cleanly. */
  stop(): Promise<boolean>;
  /** The host's ordered shutdown (its first step stops every stage): add process-wide steps after. */
  shutdown: Shutdown;
  /** The consumer events of the stages that share theirs (HostedStage.consumerEvents), by stage name. */
  consumerEvents: Map<string, EventEmitter>;
  /** The hosted ingest's accepted messages (HostedStage.intake), when it is hosted here. */
  intake?: EventEmitter;
}

export interface StageHostOptions {
  /** A stage's consumer is dead (see RuntimeOptions.onConsumerDead); default: only `/healthz` says so. */
  onConsumerDead?: (stage: string, problems: Record<string, string>) => void;
  logger: Logger;
  /** Stage start functions (default HOSTABLE_STAGES); tests pass their own. */
  stages?: Record<string, StageStart>;
  /** The hosted renderer takes every partition of its groups while it is a member (preferred-assigner.ts). */
  preferredRenderer?: boolean;
}

/**
 * Starts `names` in this process, all at once (each joins its own consumer groups; none waits
 * for another at start-up), and stops them together. If one fails to start, those that
 * did are stopped before the error is rethrown.
 */
export async function hostStages(names: string[], config: PostlineConfig, opts: StageHostOptions): Promise<StageHost> {
  const table = opts.stages ?? HOSTABLE_STAGES;
  const shutdown = new Shutdown(opts.logger);
  const settled = await Promise.allSettled(
    names.map((name) => {
      const onConsumerDead = opts.onConsumerDead && ((problems: Record<string, string>) => opts.onConsumerDead!(name, problems));
      return table[name](config, { onConsumerDead, ...(name === 'renderer' && opts.preferredRenderer ? { preferred: true } : {}) });
    }),
  );
  const running = names.flatMap((name, i) => {
    const r = settled[i];
    return r.status === 'fulfilled' ? [{ name, stage: r.value }] : [];
  });
  // All at once: each stage drains and commits through its own ordered steps, and none needs
  // another running to do so (what one leaves on a topic waits there for the next start). One
  // after another, eight stages' consumer stops (each waits out a fetch) add up past the grace
  // period the launcher gives the process.
  shutdown.add(`stop ${running.map((r) => r.name).join(', ')}`, async () => {
    const unclean = (await Promise.all(running.map(async ({ name, stage }) => ((await stage.shutdown.run()) ? [] : [name])))).flat();
    if (unclean.length > 0) throw new Error(`${unclean.join(', ')} did not shut down cleanly`);
  });
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await shutdown.run();
    throw failed.reason;
  }
  const consumerEvents = new Map(running.flatMap(({ name, stage }) => (stage.consumerEvents ? [[name, stage.consumerEvents] as const] : [])));
  return { stop: () => shutdown.run(), shutdown, consumerEvents, intake: running.find(({ stage }) => stage.intake)?.stage.intake };
}

const USAGE = `usage: postline stages <stage>[,<stage>...] [--signal-render-backlog <records>] [--exit-when-idle <ms>] [--preferred-renderer]

Runs several stages in one process (what \`postline start\` does), started and
stopped together. Stages: ${Object.keys(HOSTABLE_STAGES).join(', ')}.

  --signal-render-backlog <records>  log "${RENDER_BACKLOG_MSG}" when the hosted renderer has this
                                     many records waiting (postline start then adds a renderer)
  --exit-when-idle <ms>              stop and exit 0 once the hosted renderer has had no backlog
                                     for this long (postline start's second renderer)
  --preferred-renderer               the hosted renderer takes every partition of its groups
                                     while it is a member (postline start's second renderer)
`;

export interface StagesArgs {
  names: string[];
  signalRenderBacklog?: number;
  exitWhenIdleMs?: number;
  preferredRenderer: boolean;
}

/** `postline stages` arguments; throws StageListError naming what is wrong. */
export function parseStagesArgs(argv: string[]): StagesArgs {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: { 'signal-render-backlog': { type: 'string' }, 'exit-when-idle': { type: 'string' }, 'preferred-renderer': { type: 'boolean', default: false } } });
  } catch (err) {
    throw new StageListError((err as Error).message);
  }
  if (parsed.positionals.length !== 1) throw new StageListError('name the stages as one comma-separated argument');
  const names = parseStageList(parsed.positionals[0]);
  // Every option here is about the hosted renderer.
  const given = Object.entries(parsed.values).filter(([, v]) => v !== undefined && v !== false).map(([k]) => k);
  if (given.length > 0 && !names.includes('renderer')) throw new StageListError(`--${given[0]} needs the renderer among the stages`);
  const count = (flag: 'signal-render-backlog' | 'exit-when-idle'): number | undefined => {
    const v = parsed.values[flag];
    if (v === undefined) return undefined;
    if (!/^[1-9]\d*$/.test(v)) throw new StageListError(`--${flag} must be a positive whole number (got "${v}")`);
    return Number(v);
  };
  return { names, signalRenderBacklog: count('signal-render-backlog'), exitWhenIdleMs: count('exit-when-idle'), preferredRenderer: parsed.values['preferred-renderer'] === true };
}

/** `postline stages <a,b,...>`: runs until SIGTERM/SIGINT (or the supervisor goes), then stops the stages together. */
export async function main(argv: string[] = []): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h') || argv.length === 0) {
    process.stdout.write(USAGE);
    process.exit(argv.length > 0 ? 0 : 2);
  }
  let args: StagesArgs;
  try {
    args = parseStagesArgs(argv);
  } catch (err) {
    if (!(err instanceof StageListError)) throw err;
    process.stderr.write(`postline stages: ${err.message}\n`);
    process.exit(2);
  }
  const { names } = args;
  const label = names.join('+');
  const config = loadConfigOrExit('stages');
  // Once per process, before any stage opens a client (OpenTelemetry's API is process-global).
  const tracing = initTracing(label, config.tracing);
  const logger = createLogger('stages', config.log);
  let host: StageHost | undefined;
  // Every stage here shares the process: stop them all in order, then exit for the supervisor to restart it.
  const exit = exitForRestart(logger, () => host?.stop() ?? Promise.resolve(false), config.ops.shutdownGraceMs, 'this process');
  const onConsumerDead = process.env.POSTLINE_SUPERVISED === '1'
    ? (stage: string, problems: Record<string, string>): void => exit(problems, { stage })
    : undefined;
  host = await startedOrExit('stages', () => hostStages(names, config, { logger, onConsumerDead, preferredRenderer: args.preferredRenderer }));
  host.shutdown.add('flush traces', () => tracing.shutdown());
  host.shutdown.installSignalHandlers(config.ops.shutdownGraceMs);
  const rendering = host.consumerEvents.get('renderer');
  if (rendering && args.signalRenderBacklog) {
    const watch = new BacklogWatch({ threshold: args.signalRenderBacklog, signal: (backlog) => logger.info({ backlog, threshold: args.signalRenderBacklog }, RENDER_BACKLOG_MSG) }).watch(rendering);
    if (host.intake) watch.watchIntake(host.intake);
  }
  if (rendering && args.exitWhenIdleMs) {
    const running = host;
    const idle = new IdleExit({
      idleMs: args.exitWhenIdleMs,
      exit: () => {
        logger.info({ idleMs: args.exitWhenIdleMs }, 'no backlog to render for a while; stopping');
        void running.stop().then((clean) => process.exit(clean ? 0 : 1));
      },
    }).watch(rendering);
    host.shutdown.add('stop the idle watch', () => idle.stop());
  }
  // A fixed line supervisors (npm start, tests) wait for.
  logger.info({ pid: process.pid, stages: names }, 'stages ready');
}
