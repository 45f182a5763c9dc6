/**
 * `postline start` (`npm start`): the embedded default. One command runs the whole pipeline on
 * one machine with no infrastructure: the embedded broker, the stages (co-hosted in a few
 * processes, see PROCESS_LAYOUT), and,
 * when no relay is configured, a local capture SMTP server whose messages can be read. Prints
 * the API address, a demo API key and a working curl example. Ctrl-C stops everything cleanly:
 * the stages first (they drain and commit), the broker last. A process that dies is restarted
 * (see supervisor.ts); one that cannot be kept running stops everything, with a message saying
 * why and a non-zero exit code, rather than leaving a pipeline that silently delivers nothing.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pino from 'pino';
import pretty from 'pino-pretty';
import { Supervisor, SupervisedStartError, type ChildSpec } from './supervisor.js';
import { SECOND_RENDERER, superviseSecondRenderer } from './render-helper.js';
import { launcherApiKeys, DEMO_TENANT } from './launcher-keys.js';
import type { CaptureServer } from '../capture-smtp/capture-server.js';
import { generateApiKey } from '../ingest/api-keys.js';
import { loadPostlineConfig, type PostlineConfig } from '../../shared/config.js';
import { ConfigError } from '../../shared/config-loader.js';
import { launcherFeedbackAddresses, launcherFeedbackKeys } from './launcher-feedback.js';
import net from 'node:net';

/** A free loopback port, for an internal link the user never types (the scheduler's cancellation API). */
async function freeLoopbackPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
import { ensureSelfSignedCert } from '../smtp-gateway/self-signed-cert.js';
import { BROKER_NODE_FLAGS, COHOSTED_NODE_FLAGS, COMMAND_LINE_FLAGS, EMBEDDED_ANALYTICS_NODE_FLAGS, STAGE_NODE_FLAGS } from '../../shared/node-flags.js';

/**
 * What the children run: compiled (dist/ or npm start's tree, see compiled-tree.mjs), the same
 * tree's cli.js; from the TypeScript sources, postline.mjs (tsx).
 */
const HERE = fileURLToPath(import.meta.url);
const ENTRY = path.join(path.dirname(HERE), '..', HERE.endsWith('.js') ? 'cli.js' : 'postline.mjs');

/** Stages started after the broker, in start order; stopped in reverse. */
export const STAGES = ['analytics', 'renderer', 'dispatcher', 'scheduler', 'ingest', 'inbound', 'tracker', 'smtp-gateway', 'webhooks'] as const;

/** One supervised process and the stages it runs (one stage: `postline <stage>`; several: `postline stages a,b`). */
export interface StageProcess {
  name: string;
  stages: readonly string[];
}

/**
 * How `postline start` spreads the stages over processes. Every stage but analytics shares one
 * process (`postline stages`): one module graph and one TypeScript loader instead of eight, which
 * is most of npm start's memory (measured in the README, Capacity). Analytics keeps its own: the
 * embedded ClickHouse engine (chDB) is native code, and a crash in it, which ends the process it
 * runs in, must not take the send path with it. `--process-per-stage` gives each stage its own
 * process, as Kubernetes runs them.
 */
export function processLayout(o: { perStage: boolean; inbound: boolean }): StageProcess[] {
  // The inbound service receives mail for the return-path domain: without one it cannot run.
  const stages = STAGES.filter((s) => o.inbound || s !== 'inbound');
  if (o.perStage) return stages.map((s) => ({ name: s, stages: [s] }));
  return [
    { name: 'analytics', stages: ['analytics'] },
    { name: 'stages', stages: stages.filter((s) => s !== 'analytics') },
  ];
}

/** The flags of a process that runs one stage alone, by stage; a stage not named here runs V8's defaults. */
const ALONE_NODE_FLAGS: Readonly<Record<string, readonly string[]>> = {
  renderer: STAGE_NODE_FLAGS,
  dispatcher: STAGE_NODE_FLAGS,
  analytics: EMBEDDED_ANALYTICS_NODE_FLAGS,
  ...COMMAND_LINE_FLAGS,
};

/**
 * Node flags of one process of the layout, before the user's `--node-flags`. The large young
 * generation (STAGE_NODE_FLAGS) stays where a process runs the renderer or the dispatcher alone
 * (`--process-per-stage`, as the image runs a stage per pod). The co-hosted process and the broker
 * run V8's default: measured on `npm start` (README, Capacity), 64 MB semi-spaces cost the
 * co-hosted process ~50–90 MB at rest, kept from start-up on, for no CPU per message the bench
 * could tell apart from noise; analytics' work is mostly the native engine's (it runs with one
 * memory-reducer GC instead of three: EMBEDDED_ANALYTICS_NODE_FLAGS). The tracker and the SMTP
 * gateway alone run with the flags their deployments put on the command line (COMMAND_LINE_FLAGS).
 * The co-hosted process compiles its code as it loads (COHOSTED_NODE_FLAGS: the first message
 * after a start then runs compiled code).
 */
export function layoutNodeFlags(p: StageProcess): readonly string[] {
  return p.stages.length === 1 ? (ALONE_NODE_FLAGS[p.stages[0]] ?? []) : COHOSTED_NODE_FLAGS;
}

/**
 * The broker's node flags, before the user's `--node-flags`: V8's default young generation (its
 * churn is small buffers), an initial old generation of 128 MB and one memory-reducer GC (BROKER_NODE_FLAGS).
 */
export function brokerNodeFlags(extraFlags: readonly string[] = []): string[] {
  return [...BROKER_NODE_FLAGS, ...extraFlags];
}

/**
 * The supervisor's spec of one process of the layout; `extraFlags` (the user's `--node-flags`)
 * come after its own. A co-hosted process with the renderer signals its backlog at
 * `secondRendererAt` records (0: never), for the launcher to start a second renderer.
 */
export function processSpec(p: StageProcess, env: NodeJS.ProcessEnv, extraFlags: readonly string[] = [], secondRendererAt = 0): ChildSpec {
  const nodeFlags = [...layoutNodeFlags(p), ...extraFlags];
  if (p.stages.length === 1) return { name: p.name, args: [p.stages[0]], env, nodeFlags, ready: (l) => l.msg === 'service ready' || undefined };
  const signal = secondRendererAt > 0 && p.stages.includes('renderer') ? ['--signal-render-backlog', String(secondRendererAt)] : [];
  return { name: p.name, args: ['stages', p.stages.join(','), ...signal], env, nodeFlags, ready: (l) => l.msg === 'stages ready' || undefined };
}

const HELP = `usage: postline start [options]

  --data-dir <dir>     where the broker log, captured mail and the demo key live (default ./data)
  --api-port <n>       port of the send API (default 8080)
  --broker-port <n>    port of the embedded broker (default 9092)
  --smtp-port <n>      port of the capture SMTP server (default 2525)
  --outbox-port <n>    port of the captured-mail listing (default 8025)
  --analytics-port <n> port of the analytics read API, also reachable through the API port (default 8082)
  --inbound-port <n>   SMTP port of the inbound service for bounces, complaints and mailto unsubscribes (default 2526)
  --tracker-port <n>   port of the tracker: open pixel and click redirects (default 8083)
  --submission-port <n>  SMTP gateway port with STARTTLS (default 2587)
  --submissions-port <n> SMTP gateway port with implicit TLS (default 2465)
  --process-per-stage  run each stage in its own process (as in Kubernetes) instead of sharing one
  --second-renderer-at <records>  start a second renderer process while the renderer has this
                       many records waiting (default 2000; 0: never); it stops itself after
  --second-renderer-idle <s>      seconds without a backlog (default 60)
  --node-flags <flags> more node flags for every process it starts, after its own, e.g.
                       "--cpu-prof --cpu-prof-dir=/tmp/prof" (NODE_OPTIONS refuses --cpu-prof)

Environment variables (POSTLINE_*) are passed to every stage; set POSTLINE_DISPATCHER_RELAY_HOST
(and _PORT) to deliver through a real relay instead of the capture server. API keys you configure
(POSTLINE_INGEST_API_KEYS, POSTLINE_INGEST_API_KEYS_FILE, POSTLINE_CONFIG) keep working next to
the demo key.

A process that exits is restarted with backoff; one that keeps failing (or whose configuration
is invalid) stops everything and the command exits non-zero.
`;

/** Stops the stages' processes (last started first) before the broker: they drain and commit first. */
const stopOrder = (layout: StageProcess[]): string[] => [SECOND_RENDERER, ...layout.map((p) => p.name).reverse(), 'broker'];

/** Validates the user's configuration as the stages will (every bad key listed), before starting anything. */
function userConfig(): PostlineConfig {
  try {
    return loadPostlineConfig({ env: process.env });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`postline start: ${err.message}\n`);
    process.exit(2);
  }
}

/** Replaces the value of `--port` in `args` (a restarted broker must come back where the stages look for it). */
function pinPort(args: string[], bootstrap: string): void {
  const i = args.indexOf('--port');
  const port = bootstrap.slice(bootstrap.lastIndexOf(':') + 1);
  if (i >= 0 && /^\d+$/.test(port)) args[i + 1] = port;
}

function demoKey(dataDir: string, name = 'demo-api-key'): string {
  const file = path.join(dataDir, name);
  if (fs.existsSync(file)) return fs.readFileSync(file, 'utf8').trim();
  const key = generateApiKey();
  fs.writeFileSync(file, `${key}\n`, { mode: 0o600 });
  return key;
}

type Values = { 'process-per-stage': boolean; 'node-flags'?: string } & Record<'second-renderer-at' | 'second-renderer-idle' | 'data-dir' | 'api-port' | 'broker-port' | 'smtp-port' | 'outbox-port' | 'analytics-port' | 'inbound-port' | 'tracker-port' | 'submission-port' | 'submissions-port', string>;

/** Child output through the launcher's pretty printer; supervision events as the launcher's own lines. */
function logSupervision(supervisor: Supervisor, logger: pino.Logger, out: pretty.PrettyStream): void {
  const childLog = pino({ level: 'trace' }, out);
  supervisor.on('line', (name: string, line: Record<string, unknown> | string) => {
    if (typeof line === 'string') childLog.info({ service: name }, line);
    else childLog[(typeof line.level === 'string' ? line.level : 'info') as 'info']({ ...line, service: line.service ?? name, level: undefined, time: undefined }, String(line.msg ?? ''));
  });
  supervisor.on('restart', (name: string, failures: number, delayMs: number, how: string, phase: string) =>
    logger.warn({ stage: name, exit: how, phase, failures, delayMs }, `${name} exited unexpectedly (${how}, while ${phase}); restarting`),
  );
  supervisor.on('ready', (name: string, attempt: number, ms: number) => {
    if (attempt > 1) logger.info({ stage: name, attempt, spawnToReadyMs: ms }, `${name} is back`);
  });
}

interface Started {
  bootstrap: string;
  key: string;
  adminKey: string;
  capture?: CaptureServer;
}

/** The broker, the capture server (unless a relay is configured) and every stage, each once ready. */
async function startPipeline(supervisor: Supervisor, layout: StageProcess[], values: Values, dataDir: string, config: PostlineConfig, logger: pino.Logger, onCapture: (c: CaptureServer) => void): Promise<Started> {
  const brokerArgs = ['broker', '--port', values['broker-port'], '--data-dir', path.join(dataDir, 'broker'), '--log-level', 'info'];
  const extraFlags = (values['node-flags'] ?? '').split(/\s+/).filter(Boolean);
  const bootstrap = await supervisor.start({
    name: 'broker',
    args: brokerArgs,
    env: process.env,
    nodeFlags: brokerNodeFlags(extraFlags),
    ready: (l) => {
      if (l.msg !== 'broker ready') return undefined;
      pinPort(brokerArgs, String(l.bootstrap));
      return String(l.bootstrap);
    },
  });
  const capture = process.env.POSTLINE_DISPATCHER_RELAY_HOST
    ? undefined
    : // Loaded only when used (smtp-server, a second Fastify): a launcher behind a relay stays smaller.
      await (await import('../capture-smtp/capture-server.js')).startCaptureServer({
        dir: path.join(dataDir, 'outbox'),
        smtpHost: '127.0.0.1',
        smtpPort: Number(values['smtp-port']),
        httpHost: '127.0.0.1',
        httpPort: Number(values['outbox-port']),
        logger: logger.child({ service: 'capture-smtp' }),
      });
  if (capture) onCapture(capture);
  const key = demoKey(dataDir);
  const adminKey = demoKey(dataDir, 'admin-api-key');
  // Scheduled send: ingest forwards DELETE /v1/emails/:id to the scheduler's cancellation API.
  const schedulerPort = process.env.POSTLINE_SCHEDULE_PORT ?? String(await freeLoopbackPort());
  const feedback = launcherFeedbackAddresses(config.feedback, Boolean(capture), values['api-port']);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    POSTLINE_KAFKA_BROKERS: bootstrap,
    POSTLINE_KAFKA_PARTITIONS: process.env.POSTLINE_KAFKA_PARTITIONS ?? '2',
    // The Postline broker ends a waiting fetch when its consumer stops, resumes, seeks or has to
    // rejoin a rebalance, and removes a killed process's group members when its connections
    // close (services/broker/groups/group-coordinator.ts): a long wait costs no shutdown or
    // rebalance time here, only spares idle wake-ups. (On Kafka the default, 3 s, stays.)
    POSTLINE_KAFKA_FETCH_MAX_WAIT_MS: process.env.POSTLINE_KAFKA_FETCH_MAX_WAIT_MS ?? '10000',
    POSTLINE_DISPATCHER_FETCH_MAX_WAIT_MS: process.env.POSTLINE_DISPATCHER_FETCH_MAX_WAIT_MS ?? '10000',
    // Readers of email.events off the send path: the broker answers their fetch within 500 ms of
    // any event (services/broker/handlers/fetch.ts), so their wait only sets how often they wake idle.
    POSTLINE_KAFKA_FOLLOWER_MAX_WAIT_MS: process.env.POSTLINE_KAFKA_FOLLOWER_MAX_WAIT_MS ?? '10000',
    POSTLINE_OPS_PORT: '0',
    // Below the supervisor's 15 s before SIGKILL, so a stuck drain still ends on its own terms.
    POSTLINE_OPS_SHUTDOWN_GRACE_MS: process.env.POSTLINE_OPS_SHUTDOWN_GRACE_MS ?? '10000',
    POSTLINE_OPS_HOST: '127.0.0.1',
    POSTLINE_INGEST_HOST: process.env.POSTLINE_INGEST_HOST ?? '127.0.0.1',
    POSTLINE_INGEST_PORT: values['api-port'],
    // The user's keys (from the environment or POSTLINE_CONFIG) and the demo key, side by side.
    POSTLINE_INGEST_API_KEYS: JSON.stringify(launcherApiKeys(config.ingest.apiKeys, key, adminKey)),
    // Analytics owns the in-process ClickHouse data directory (one process may open it) and
    // serves the read API; ingest forwards /v1/messages and /v1/stats to it.
    POSTLINE_ANALYTICS_DATA_DIR: path.join(dataDir, 'analytics'),
    POSTLINE_ANALYTICS_HOST: '127.0.0.1',
    POSTLINE_ANALYTICS_PORT: values['analytics-port'],
    POSTLINE_INGEST_READ_API_URL: `http://127.0.0.1:${values['analytics-port']}`,
    POSTLINE_SCHEDULE_HOST: '127.0.0.1',
    POSTLINE_SCHEDULE_PORT: schedulerPort,
    POSTLINE_SCHEDULE_SCHEDULER_URL: `http://127.0.0.1:${schedulerPort}`,
    // Feedback (return paths, unsubscribe links, the inbound service): a signing key generated once
    // into the data dir unless the user configured keys, and local defaults for the addresses.
    ...launcherFeedbackKeys(config.feedback, dataDir),
    POSTLINE_FEEDBACK_RETURN_PATH_DOMAIN: feedback.returnPathDomain,
    POSTLINE_FEEDBACK_UNSUBSCRIBE_URL: feedback.unsubscribeUrl,
    POSTLINE_INBOUND_HOST: process.env.POSTLINE_INBOUND_HOST ?? '127.0.0.1',
    POSTLINE_INBOUND_PORT: values['inbound-port'],
    // Tracking links point at the local tracker unless the user named a public base URL.
    POSTLINE_TRACKING_HOST: process.env.POSTLINE_TRACKING_HOST ?? '127.0.0.1',
    POSTLINE_TRACKING_PORT: values['tracker-port'],
    POSTLINE_TRACKING_BASE_URL: config.tracking.baseUrl || `http://127.0.0.1:${values['tracker-port']}`,
    ...launcherGatewayEnv(config, values, dataDir),
    ...(capture ? { POSTLINE_DISPATCHER_RELAY_HOST: '127.0.0.1', POSTLINE_DISPATCHER_RELAY_PORT: String(capture.smtpPort) } : {}),
  };
  const secondRendererAt = Number(values['second-renderer-at']);
  const cohosting = layout.find((p) => p.stages.length > 1 && p.stages.includes('renderer'));
  if (cohosting && secondRendererAt > 0) {
    superviseSecondRenderer(supervisor, { from: cohosting.name, env, nodeFlags: extraFlags, idleMs: Number(values['second-renderer-idle']) * 1000, logger });
  }
  // Together: each process waits only for the broker, none for another.
  await Promise.all(layout.map((p) => supervisor.start(processSpec(p, env, extraFlags, secondRendererAt))));
  return { bootstrap, key, adminKey, capture };
}

/** The SMTP gateway's ports, on loopback unless the user says otherwise, and a self-signed certificate unless one is configured. */
function launcherGatewayEnv(config: PostlineConfig, values: Values, dataDir: string): NodeJS.ProcessEnv {
  const cert = config.smtpGateway.tlsKeyFile ? undefined : ensureSelfSignedCert(path.join(dataDir, 'smtp-gateway'));
  return {
    POSTLINE_SMTP_GATEWAY_HOST: process.env.POSTLINE_SMTP_GATEWAY_HOST ?? '127.0.0.1',
    POSTLINE_SMTP_GATEWAY_SUBMISSION_PORT: values['submission-port'],
    POSTLINE_SMTP_GATEWAY_SUBMISSIONS_PORT: values['submissions-port'],
    ...(cert ? { POSTLINE_SMTP_GATEWAY_TLS_KEY_FILE: cert.keyFile, POSTLINE_SMTP_GATEWAY_TLS_CERT_FILE: cert.certFile } : {}),
  };
}

/** The bounce domain: the user's, else one that resolves nowhere but names the local inbound service. */

/** Where the user's own keys come from, for the banner (empty when there are none). */
function userKeySources(config: PostlineConfig): string[] {
  const n = config.ingest.apiKeys.length;
  return [
    n > 0 ? `${n} from ${process.env.POSTLINE_INGEST_API_KEYS ? 'POSTLINE_INGEST_API_KEYS' : 'POSTLINE_CONFIG'}` : '',
    config.ingest.apiKeysFile ? `those in ${config.ingest.apiKeysFile}` : '',
  ].filter(Boolean);
}

function banner({ bootstrap, key, adminKey, capture }: Started, values: Values, dataDir: string, config: PostlineConfig): string {
  const api = `http://127.0.0.1:${values['api-port']}`;
  const yours = userKeySources(config);
  const bounces = launcherFeedbackAddresses(config.feedback, Boolean(capture), values['api-port']).returnPathDomain;
  const inbound = `smtp://127.0.0.1:${values['inbound-port']}`;
  const gateway = `smtp://127.0.0.1:${values['submission-port']} (STARTTLS), smtps://127.0.0.1:${values['submissions-port']}`;
  return `
Postline is running.

  Send API     ${api}/v1/emails
${config.console.enabled ? `  Console      ${api}/console   (sign in with the demo key below; the admin key manages keys)\n` : ''}  API key      ${key}   (tenant "${DEMO_TENANT}"; kept in ${path.join(dataDir, 'demo-api-key')})
  Admin key    ${adminKey}   (scope admin: /v1/admin, postline tenants|keys|domains; kept in ${path.join(dataDir, 'admin-api-key')})
${yours.length > 0 ? `  Your keys    still valid, next to the demo key: ${yours.join(', ')}\n` : ''}  Kafka        ${bootstrap}   (kcat -b ${bootstrap} -L)
${capture ? `  Outbox       http://127.0.0.1:${capture.httpPort}/v1/dev/outbox   (captured mail as .eml in ${path.join(dataDir, 'outbox')})\n` : ''}  Bounces      ${bounces ? `${inbound}   (DSNs to b-…@${bounces}, complaints to ${config.inbound.complaintAddresses[0] ?? 'fbl'}@${bounces}, mailto unsubscribes)` : `not read: set POSTLINE_FEEDBACK_RETURN_PATH_DOMAIN, whose MX points here, to run the inbound service on ${inbound}`}
${bounces ? `  Inbound      ${inbound}   (mail to your inbound domains, claimed with POST ${api}/v1/inbound-routes, lands on email.inbound)\n` : ''}  Tracker      http://127.0.0.1:${values['tracker-port']}   (opens and clicks: add "track":{"opens":true,"clicks":true} to a message)
  SMTP submit  ${gateway}   (any user name, the API key as password${config.smtpGateway.tlsKeyFile ? '' : '; self-signed certificate'})

Try it:

  curl -sS ${api}/v1/emails \\
    -H 'Authorization: Bearer ${key}' -H 'Content-Type: application/json' \\
    -d '{"from":"Demo <demo@example.com>","to":["you@example.org"],"subject":"Hello from Postline","text":"It works.","html":"<p>It <b>works</b>.</p>"}'

  printf 'From: demo@example.com\\r\\nTo: you@example.org\\r\\nSubject: Hello over SMTP\\r\\n\\r\\nIt works.\\r\\n' | \\
    curl -sS --ssl-reqd -k smtp://127.0.0.1:${values['submission-port']} -u 'apikey:${key}' --mail-from demo@example.com --mail-rcpt you@example.org -T -
${capture ? `\n  curl -sS http://127.0.0.1:${capture.httpPort}/v1/dev/outbox\n` : ''}
  curl -sS ${api}/v1/messages/<id> -H 'Authorization: Bearer ${key}'   # the message's timeline

Ctrl-C stops everything.
`;
}

/**
 * `--node-flags "--cpu-prof …"` as two arguments, as the help shows it: parseArgs refuses an
 * option value that starts with a dash unless it is joined (`--node-flags=--cpu-prof …`).
 */
export function joinNodeFlagsValue(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--node-flags' && i + 1 < argv.length) out.push(`--node-flags=${argv[++i]}`);
    else out.push(argv[i]);
  }
  return out;
}

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: joinNodeFlagsValue(argv),
    options: {
      'data-dir': { type: 'string', default: './data' },
      'api-port': { type: 'string', default: '8080' },
      'broker-port': { type: 'string', default: '9092' },
      'smtp-port': { type: 'string', default: '2525' },
      'outbox-port': { type: 'string', default: '8025' },
      'analytics-port': { type: 'string', default: '8082' },
      'inbound-port': { type: 'string', default: '2526' },
      'tracker-port': { type: 'string', default: '8083' },
      'submission-port': { type: 'string', default: '2587' },
      'submissions-port': { type: 'string', default: '2465' },
      'process-per-stage': { type: 'boolean', default: false },
      'node-flags': { type: 'string' },
      'second-renderer-at': { type: 'string', default: '2000' },
      'second-renderer-idle': { type: 'string', default: '60' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  for (const [flag, least] of [['second-renderer-at', 0], ['second-renderer-idle', 1]] as const) {
    if (!/^\d+$/.test(values[flag]) || Number(values[flag]) < least) {
      process.stderr.write(`postline start: --${flag} must be a whole number of at least ${least} (got "${values[flag]}")\n`);
      process.exit(2);
    }
  }
  const config = userConfig();
  const dataDir = path.resolve(values['data-dir']);
  fs.mkdirSync(dataDir, { recursive: true });
  const out = pretty({ colorize: process.stdout.isTTY, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,time', messageKey: 'msg', singleLine: true });
  const logger = pino({ name: 'postline', base: { service: 'start' } }, out);
  // A closed terminal or pipe (`npm start | head`) must not take the pipeline down with it.
  process.stdout.on('error', () => undefined);
  const capturing = !process.env.POSTLINE_DISPATCHER_RELAY_HOST;
  const layout = processLayout({ perStage: values['process-per-stage'], inbound: Boolean(launcherFeedbackAddresses(config.feedback, capturing, values['api-port']).returnPathDomain) });
  const supervisor = new Supervisor(ENTRY);
  logSupervision(supervisor, logger, out);

  let capture: CaptureServer | undefined;
  let stopping = false;
  /** Stops every process in order, then exits with `code` (non-zero with `why` on stderr). */
  const stop = async (code: number, why?: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    if (why) logger.fatal(why);
    logger.info('stopping: stages drain and commit first, the broker last');
    await supervisor.stop(stopOrder(layout));
    await capture?.close().catch((err: Error) => logger.warn({ err: err.message }, 'capture server did not close cleanly'));
    logger.info('stopped');
    if (why) process.stderr.write(`\npostline start: ${why}\nEvery process has been stopped.\n`);
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));
  supervisor.on('give-up', (name: string, reason: string) => {
    // The co-hosted renderer goes on alone.
    if (name === SECOND_RENDERER) logger.error(`${reason}. Its log lines above say why; the renderer goes on alone.`);
    else void stop(1, `${reason}. Its log lines above say why.`);
  });
  // Last resort: whatever else throws in the launcher stops the pipeline loudly, never half of it.
  process.on('uncaughtException', (err) => void stop(1, `the launcher failed: ${err.stack ?? err.message}`));
  process.on('unhandledRejection', (err) => void stop(1, `the launcher failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`));

  let started: Started;
  try {
    started = await startPipeline(supervisor, layout, values as Values, dataDir, config, logger, (c) => (capture = c));
  } catch (err) {
    // Given up on (or stopped) before it was ever ready: `stop` is already under way.
    if (!(err instanceof SupervisedStartError)) await stop(1, `could not start: ${(err as Error).message}`);
    return;
  }
  process.stdout.write(banner(started, values as Values, dataDir, config));
}
