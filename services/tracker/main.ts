/**
 * `postline tracker`: the open pixel and click redirects. Wires config, the feedback keyring
 * (tracking links are feedback tokens of purpose `track`), the runtime (logger, metrics, Kafka
 * producer, event publisher, ops server), the event buffer and the Fastify app, and shuts them
 * down in order: stop accepting HTTP (requests in flight finish), give the buffer
 * `ops.shutdownGraceMs` to hand its events to Kafka, then drain the producer and disconnect.
 * `startTracker` runs it in-process (npm start, tests).
 */
import type { FastifyInstance } from 'fastify';
import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { PostlineConfig } from '../../shared/config.js';
import { ConfigError } from '../../shared/config-loader.js';
import { optionsReference } from '../../shared/config-docs.js';
import type { Shutdown } from '../../shared/lifecycle.js';
import { serviceMain, startRuntime, type RuntimeOptions } from '../../shared/service-runtime.js';
import { loadFeedbackKeyring } from '../../shared/feedback/feedback-keys.js';
import { parseCidrs } from '../../shared/tracking/client-ip.js';
import type { MachineRules } from '../../shared/tracking/machine-detection.js';
import { buildTrackerApp } from './app.js';
import { EventBuffer } from './event-buffer.js';
import { EngagementMemory } from './engagement-memory.js';
import { instrumentTracker } from './tracker-metrics.js';

export interface TrackerHandle {
  app: FastifyInstance;
  buffer: EventBuffer;
  /** The HTTP port listened on. */
  port: number;
  /** `http://host:port` of the tracker. */
  address: string;
  opsAddress?: string;
  shutdown: Shutdown;
  close(): Promise<boolean>;
}

export interface TrackerOptions extends RuntimeOptions {
  /** Pause after a failed produce before trying again (default 1000 ms). */
  retryDelayMs?: number;
}

/** The machine-detection rules from config; throws ConfigError naming a bad range. */
export function machineRules(config: PostlineConfig['tracking']): MachineRules {
  try {
    return { appleProxyRanges: parseCidrs(config.appleProxyCidrs), withinSeconds: config.machineWithinSeconds, clickBurstMs: config.clickBurstMs };
  } catch (err) {
    throw new ConfigError([`tracking.appleProxyCidrs: ${(err as Error).message}`]);
  }
}

/** Checks what the schema cannot; throws ConfigError listing every problem. */
export function checkTrackerConfig(config: PostlineConfig): void {
  const problems: string[] = [];
  if (config.feedback.keys.length === 0 && !config.feedback.keysFile) problems.push('POSTLINE_FEEDBACK_KEYS (feedback.keys) or feedback.keysFile must hold a key: tracking links are signed with it');
  if (problems.length) throw new ConfigError(problems);
}

/** Starts the tracker in this process; resolves once it listens. */
export async function startTracker(config: PostlineConfig, opts: TrackerOptions = {}): Promise<TrackerHandle> {
  checkTrackerConfig(config);
  const keyring = loadFeedbackKeyring(config.feedback);
  const rules = machineRules(config.tracking);
  const rt = await startRuntime('tracker', config, opts);
  const observer = new EventEmitter();
  const buffer = new EventBuffer({
    publish: (event) => rt.events.publish(event),
    maxQueued: config.tracking.queueMax,
    concurrency: config.tracking.publishConcurrency,
    retryDelayMs: opts.retryDelayMs,
  });
  instrumentTracker(observer, buffer, rt.registry);
  const app = buildTrackerApp({
    keyring,
    buffer,
    memory: new EngagementMemory(config.tracking.firstSeenEntries),
    rules,
    logger: rt.logger,
    trustProxyHops: config.tracking.trustProxyHops,
    observer,
  });
  let address: string;
  let opsAddress: string | undefined;
  try {
    address = await app.listen({ host: config.tracking.host, port: config.tracking.port });
    rt.shutdown.add('stop accepting HTTP', () => app.close());
    rt.shutdown.add('hand queued events to Kafka', async () => {
      const drained = await buffer.drain(config.ops.shutdownGraceMs);
      if (!drained) rt.logger.warn({ left: buffer.size }, 'events still queued at shutdown are lost');
      buffer.close();
    });
    rt.addFinalShutdownSteps();
    opsAddress = await rt.startOps();
  } catch (err) {
    await rt.shutdown.run();
    throw err;
  }
  const port = (app.server.address() as AddressInfo).port;
  rt.logger.info({ http: address, ops: opsAddress, baseUrl: config.tracking.baseUrl || undefined }, 'tracker ready');
  return { app, buffer, port, address, opsAddress, shutdown: rt.shutdown, close: () => rt.shutdown.run() };
}

const help = (): string => `usage: postline tracker

Serves the open pixel (GET /o/<token>.gif) and click redirects (GET /c/<token>?u=<url>) the
renderer writes into HTML mail when tracking is on, and publishes opened and clicked events
(machine opens flagged) to email.events without ever making a response wait for Kafka.
/metrics, /healthz and /readyz on ops.port. Configured by environment variables (or a JSON
file named by POSTLINE_CONFIG):

${optionsReference(['tracking.', 'feedback.keys', 'kafka.', 'ops.'])}
`;

/** The \`postline tracker\` command. */
export async function main(argv: string[] = []): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(help());
    return;
  }
  await serviceMain('tracker', (config) => startTracker(config));
}
