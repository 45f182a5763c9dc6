/**
 * `postline start` (`npm start`): the embedded default. One command runs the whole pipeline on
 * one machine with no infrastructure: the embedded broker, every stage as its own process, and,
 * when no relay is configured, a local capture SMTP server whose messages can be read. Prints
 * the API address, a demo API key and a working curl example. Ctrl-C stops everything cleanly:
 * the stages first (they drain and commit), the broker last.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pino from 'pino';
import pretty from 'pino-pretty';
import { Supervisor } from './supervisor.js';
import { startCaptureServer } from '../capture-smtp/capture-server.js';
import { generateApiKey, hashApiKey } from '../ingest/api-keys.js';

const ENTRY = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'postline.mjs');

/** Stages started after the broker, in start order; stopped in reverse. */
export const STAGES = ['analytics', 'renderer', 'dispatcher', 'scheduler', 'ingest'] as const;

const HELP = `usage: postline start [options]

  --data-dir <dir>     where the broker log, captured mail and the demo key live (default ./data)
  --api-port <n>       port of the send API (default 8080)
  --broker-port <n>    port of the embedded broker (default 9092)
  --smtp-port <n>      port of the capture SMTP server (default 2525)
  --outbox-port <n>    port of the captured-mail listing (default 8025)
  --analytics-port <n> port of the analytics read API, also reachable through the API port (default 8082)

Environment variables (POSTLINE_*) are passed to every stage; set POSTLINE_DISPATCHER_RELAY_HOST
(and _PORT) to deliver through a real relay instead of the capture server.
`;

function demoKey(dataDir: string): string {
  const file = path.join(dataDir, 'demo-api-key');
  if (fs.existsSync(file)) return fs.readFileSync(file, 'utf8').trim();
  const key = generateApiKey();
  fs.writeFileSync(file, `${key}\n`, { mode: 0o600 });
  return key;
}

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'data-dir': { type: 'string', default: './data' },
      'api-port': { type: 'string', default: '8080' },
      'broker-port': { type: 'string', default: '9092' },
      'smtp-port': { type: 'string', default: '2525' },
      'outbox-port': { type: 'string', default: '8025' },
      'analytics-port': { type: 'string', default: '8082' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  const dataDir = path.resolve(values['data-dir']);
  fs.mkdirSync(dataDir, { recursive: true });
  const out = pretty({ colorize: process.stdout.isTTY, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,time', messageKey: 'msg', singleLine: true });
  const logger = pino({ name: 'postline', base: { service: 'start' } }, out);
  const supervisor = new Supervisor(ENTRY);
  const childLog = pino({ level: 'trace' }, out);
  supervisor.on('line', (name: string, line: Record<string, unknown> | string) => {
    if (typeof line === 'string') childLog.info({ service: name }, line);
    else childLog[(typeof line.level === 'string' ? line.level : 'info') as 'info']({ ...line, service: line.service ?? name, level: undefined, time: undefined }, String(line.msg ?? ''));
  });
  supervisor.on('restart', (name: string, attempt: number, delay: number) => logger.warn({ stage: name, attempt, delayMs: delay }, 'stage exited unexpectedly; restarting'));

  const bootstrap = await supervisor.start({
    name: 'broker',
    args: ['broker', '--port', values['broker-port'], '--data-dir', path.join(dataDir, 'broker'), '--log-level', 'info'],
    env: process.env,
    ready: (l) => (l.msg === 'broker ready' ? String(l.bootstrap) : undefined),
  });

  const relayConfigured = Boolean(process.env.POSTLINE_DISPATCHER_RELAY_HOST);
  const capture = relayConfigured
    ? undefined
    : await startCaptureServer({
        dir: path.join(dataDir, 'outbox'),
        smtpHost: '127.0.0.1',
        smtpPort: Number(values['smtp-port']),
        httpHost: '127.0.0.1',
        httpPort: Number(values['outbox-port']),
        logger: logger.child({ service: 'capture-smtp' }),
      });

  const key = demoKey(dataDir);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    POSTLINE_KAFKA_BROKERS: bootstrap,
    POSTLINE_KAFKA_PARTITIONS: process.env.POSTLINE_KAFKA_PARTITIONS ?? '2',
    POSTLINE_OPS_PORT: '0',
    // Below the supervisor's 15 s before SIGKILL, so a stuck drain still ends on its own terms.
    POSTLINE_OPS_SHUTDOWN_GRACE_MS: process.env.POSTLINE_OPS_SHUTDOWN_GRACE_MS ?? '10000',
    POSTLINE_OPS_HOST: '127.0.0.1',
    POSTLINE_INGEST_HOST: process.env.POSTLINE_INGEST_HOST ?? '127.0.0.1',
    POSTLINE_INGEST_PORT: values['api-port'],
    POSTLINE_INGEST_API_KEYS: JSON.stringify([{ tenant: 'demo', keyHash: hashApiKey(key) }]),
    // Analytics owns the in-process ClickHouse data directory (one process may open it) and
    // serves the read API; ingest forwards /v1/messages and /v1/stats to it.
    POSTLINE_ANALYTICS_DATA_DIR: path.join(dataDir, 'analytics'),
    POSTLINE_ANALYTICS_HOST: '127.0.0.1',
    POSTLINE_ANALYTICS_PORT: values['analytics-port'],
    POSTLINE_INGEST_READ_API_URL: `http://127.0.0.1:${values['analytics-port']}`,
    ...(capture ? { POSTLINE_DISPATCHER_RELAY_HOST: '127.0.0.1', POSTLINE_DISPATCHER_RELAY_PORT: String(capture.smtpPort) } : {}),
  };
  const ready = (l: Record<string, unknown>): boolean | undefined => l.msg === 'service ready' || undefined;

  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info('stopping: stages drain and commit first, the broker last');
    await supervisor.stop([...[...STAGES].reverse(), 'broker']);
    await capture?.close();
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());

  for (const stage of STAGES) await supervisor.start({ name: stage, args: [stage], env, ready: (l) => ready(l) }, 60_000);

  const api = `http://127.0.0.1:${values['api-port']}`;
  process.stdout.write(`
Postline is running.

  Send API     ${api}/v1/emails
  API key      ${key}   (tenant "demo"; kept in ${path.join(dataDir, 'demo-api-key')})
  Kafka        ${bootstrap}   (kcat -b ${bootstrap} -L)
${capture ? `  Outbox       http://127.0.0.1:${capture.httpPort}/v1/dev/outbox   (captured mail as .eml in ${path.join(dataDir, 'outbox')})\n` : ''}
Try it:

  curl -sS ${api}/v1/emails \\
    -H 'Authorization: Bearer ${key}' -H 'Content-Type: application/json' \\
    -d '{"from":"Demo <demo@example.com>","to":["you@example.org"],"subject":"Hello from Postline","text":"It works.","html":"<p>It <b>works</b>.</p>"}'
${capture ? `\n  curl -sS http://127.0.0.1:${capture.httpPort}/v1/dev/outbox\n` : ''}
  curl -sS ${api}/v1/messages/<id> -H 'Authorization: Bearer ${key}'   # the message's timeline

Ctrl-C stops everything.
`);
}
