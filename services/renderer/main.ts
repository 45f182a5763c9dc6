/**
 * `postline renderer`: wires the render stage — the shared runtime (config, logger, metrics,
 * Kafka, producer, events, ops server), the template repository (directory +
 * `email.templates`), the Renderer and its consumer — and its ordered shutdown.
 * `startRenderer` is also used in-process by `npm start` and the tests.
 */
import { parseArgs } from 'node:util';
import type { Consumer } from 'kafkajs';
import type { PostlineConfig } from '../../shared/config.js';
import type { Shutdown } from '../../shared/lifecycle.js';
import type { Logger } from '../../shared/logger.js';
import { ConfigError } from '../../shared/config-loader.js';
import { instrumentStageConsumer } from '../../shared/metrics.js';
import { Topics } from '../../shared/topics.js';
import { StageConsumer } from '../../shared/kafka/stage-consumer.js';
import { serviceMain, startRuntime, type RuntimeOptions } from '../../shared/service-runtime.js';
import { loadTemplateDirectory, type DirectoryTemplates } from '../../shared/templates/template-directory.js';
import { openTemplateRepository, type TemplateRepository } from '../../shared/templates/template-repository.js';
import { Renderer } from './renderer.js';
import { instrumentRenderer } from './renderer-metrics.js';

export const RENDERER_GROUP = 'postline-renderer';

export interface RendererOptions extends RuntimeOptions {
  /** Consumer group (default `postline-renderer`); tests use their own. */
  groupId?: string;
  /** Serve /metrics, /healthz, /readyz on `config.ops` (default true). */
  ops?: boolean;
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
}

async function readDirectory(dir: string): Promise<{ directory?: DirectoryTemplates; issues: string[] }> {
  if (!dir) return { issues: [] };
  const { directory, issues } = await loadTemplateDirectory(dir);
  return issues.length > 0 ? { issues } : { directory, issues };
}

/** Re-reads the directory into the repository; with any problem the previous set stays. */
function directoryReloader(templates: TemplateRepository, dir: string, logger: Logger): () => Promise<string[]> {
  return async () => {
    const next = await readDirectory(dir);
    if (next.directory) templates.setDirectory(next.directory);
    else if (next.issues.length > 0) logger.error({ dir, issues: next.issues }, 'templates directory has problems; keeping the previous templates');
    return next.issues;
  };
}

/** Readiness: the consumer is a member of its group (false after a crash, stop or disconnect). */
function groupMembership(consumer: Consumer): () => string | null {
  let joined = false;
  consumer.on(consumer.events.GROUP_JOIN, () => (joined = true));
  for (const e of [consumer.events.CRASH, consumer.events.STOP, consumer.events.DISCONNECT]) consumer.on(e, () => (joined = false));
  return () => (joined ? null : 'not a member of the consumer group');
}

export async function startRenderer(config: PostlineConfig, opts: RendererOptions = {}): Promise<RunningRenderer> {
  const rc = config.renderer;
  // Bad templates are bad config: refuse to start, listing every problem (exit 2 from main).
  const initial = await readDirectory(rc.templatesDir);
  if (initial.issues.length > 0) throw new ConfigError(initial.issues.map((i) => `POSTLINE_RENDERER_TEMPLATES_DIR (${rc.templatesDir}): ${i}`));
  const rt = await startRuntime('renderer', config, opts);
  const { logger } = rt;
  const state: { stage?: StageConsumer; consumer?: Consumer; stopTable?: () => Promise<void>; reload?: NodeJS.Timeout } = {};
  // Steps run in this order, each skipping what was never started, so a failed start-up
  // cleans up with the same code: stop fetching and drain in-flight records (they resolve
  // only once their produces are acked), then the table, then disconnect; the runtime's
  // final steps drain and disconnect the producer and close the ops server.
  rt.shutdown
    .add('stop reloading templates', () => clearInterval(state.reload))
    .add('stop consuming and drain in-flight records', () => state.stage?.stop())
    .add('stop template table', () => state.stopTable?.())
    .add('disconnect consumer', () => state.consumer?.disconnect());
  rt.addFinalShutdownSteps();
  try {
    const opened = await openTemplateRepository({ kafka: rt.kafka, producer: rt.producer, logger, directory: initial.directory, cacheSize: rc.templateCacheSize });
    state.stopTable = opened.stop;
    const templates = opened.repository;
    const renderer = new Renderer({
      templates,
      producer: rt.producer,
      events: rt.events,
      logger,
      limits: { maxRecordBytes: rc.maxRecordBytes, maxMessageBytes: rc.maxMessageBytes },
    });
    instrumentRenderer(renderer, rt.registry);
    // A short long-poll (kafkajs waits 5 s by default) bounds how long stopping waits for the
    // fetch in flight; records still arrive as soon as they are written.
    const consumer = (state.consumer = rt.kafka.consumer({ groupId: opts.groupId ?? RENDERER_GROUP, maxWaitTimeInMs: 500 }));
    rt.readiness.consumer = groupMembership(consumer);
    rt.watchConsumer('consumer', consumer);
    await consumer.connect();
    state.stage = new StageConsumer({ consumer, topics: [Topics.requested], concurrency: rc.concurrency, maxInFlightBytes: rc.maxInFlightBytes, handle: (r) => renderer.handle(r), deadLetters: rt.events, logger });
    instrumentStageConsumer('renderer', state.stage, rt.registry);
    await state.stage.start();
    const reloadTemplates = directoryReloader(templates, rc.templatesDir, logger);
    if (rc.templatesDir && rc.templatesReloadMs > 0) {
      state.reload = setInterval(() => void reloadTemplates().catch((err) => logger.error({ err }, 'templates reload failed')), rc.templatesReloadMs).unref();
    }
    const opsAddress = opts.ops === false ? '' : await rt.startOps();
    logger.info({ group: opts.groupId ?? RENDERER_GROUP, concurrency: rc.concurrency, templatesDir: rc.templatesDir || undefined }, 'renderer running');
    return { close: () => rt.shutdown.run(), shutdown: rt.shutdown, opsAddress, templates, reloadTemplates };
  } catch (err) {
    await rt.shutdown.run();
    throw err;
  }
}

const HELP = `usage: postline renderer [--help]

Consumes email.requested, renders templates and MIME, produces one record per recipient
domain to email.dispatch.<priority>. Configured by POSTLINE_* environment variables (and the
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
      // A bad templates directory is reported like bad config: every problem, exit 2.
      if (!(err instanceof ConfigError)) throw err;
      process.stderr.write(`postline renderer: ${err.message}\n`);
      process.exit(2);
    }
  });
}
