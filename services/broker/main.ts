/**
 * `postline broker`: runs the broker in the foreground until SIGTERM/SIGINT, then shuts down
 * cleanly (flush, close sockets and files) and exits.
 */
import { parseArgs } from 'node:util';
import pino from 'pino';
import { startBroker, DEFAULT_BROKER_OPTIONS } from './broker.js';
import { shutdownWhenSupervisorGoes } from '../../shared/lifecycle.js';
import { defaultDestination } from '../../shared/logger.js';
import { buildOpsApp } from '../../shared/ops-server.js';
import type { FastifyInstance } from 'fastify';

const HELP = `usage: postline broker [options]

  --host <addr>            interface to listen on (default ${DEFAULT_BROKER_OPTIONS.host})
  --port <n>               port (default 9092; 0 picks a free port)
  --data-dir <dir>         where logs and state live (default ./data/broker)
  --advertised-host <h>    host name given to clients (default: --host)
  --partitions <n>         partitions for auto-created topics (default ${DEFAULT_BROKER_OPTIONS.defaultPartitions})
  --no-auto-create         refuse unknown topics instead of creating them
  --durability <mode>      group (fsync before acks=1/-1 answers, default) | none
  --offsets-retention-minutes <n>
                           delete a group with no members this long after its last
                           activity, with its offsets (default ${DEFAULT_BROKER_OPTIONS.offsetsRetentionMinutes}, 7 days)
  --ops-port <n>           serve /metrics (Prometheus), /healthz and /readyz on this port
                           (0 picks a free one; default: no operations server)
  --ops-host <addr>        interface of the operations server (default: --host)
  --log-level <level>      pino level (default info)
`;

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      host: { type: 'string', default: DEFAULT_BROKER_OPTIONS.host },
      port: { type: 'string', default: '9092' },
      'data-dir': { type: 'string', default: './data/broker' },
      'advertised-host': { type: 'string' },
      partitions: { type: 'string', default: String(DEFAULT_BROKER_OPTIONS.defaultPartitions) },
      'no-auto-create': { type: 'boolean', default: false },
      durability: { type: 'string', default: 'group' },
      'offsets-retention-minutes': { type: 'string', default: String(DEFAULT_BROKER_OPTIONS.offsetsRetentionMinutes) },
      'ops-port': { type: 'string' },
      'ops-host': { type: 'string' },
      'log-level': { type: 'string', default: process.env.LOG_LEVEL ?? 'info' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  const errors: string[] = [];
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) errors.push(`--port must be 0-65535 (got "${values.port}")`);
  const partitions = Number(values.partitions);
  if (!Number.isInteger(partitions) || partitions < 1) errors.push(`--partitions must be a positive integer (got "${values.partitions}")`);
  const retention = Number(values['offsets-retention-minutes']);
  if (!(retention > 0)) errors.push(`--offsets-retention-minutes must be a positive number (got "${values['offsets-retention-minutes']}")`);
  const opsPort = values['ops-port'] === undefined ? undefined : Number(values['ops-port']);
  if (opsPort !== undefined && (!Number.isInteger(opsPort) || opsPort < 0 || opsPort > 65535)) errors.push(`--ops-port must be 0-65535 (got "${values['ops-port']}")`);
  if (values.durability !== 'group' && values.durability !== 'none') errors.push(`--durability must be group or none (got "${values.durability}")`);
  if (errors.length > 0) {
    process.stderr.write(`${errors.join('\n')}\n\n${HELP}`);
    process.exit(2);
  }
  const logger = pino({ name: 'broker', level: values['log-level'] }, defaultDestination());
  const broker = await startBroker({
    host: values.host,
    port,
    dataDir: values['data-dir'],
    advertisedHost: values['advertised-host'],
    defaultPartitions: partitions,
    autoCreateTopics: !values['no-auto-create'],
    durability: values.durability as 'group' | 'none',
    offsetsRetentionMinutes: retention,
    logger,
  });
  // The broker's metrics (requests and their latency, records in, fsync time, log sizes, groups)
  // for Prometheus; the broker is ready once it listens, which it does by now.
  let ops: FastifyInstance | undefined;
  if (opsPort !== undefined) {
    ops = buildOpsApp({ registry: broker.registry, readiness: {} });
    const address = await ops.listen({ host: values['ops-host'] ?? values.host, port: opsPort });
    logger.info({ ops: address }, 'broker operations server listening');
  }
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    // A hard deadline: a stuck close must not keep the process alive forever.
    setTimeout(() => process.exit(1), 10_000).unref();
    void Promise.all([broker.close(), ops?.close()]).then(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  shutdownWhenSupervisorGoes(() => stop('SIGHUP'));
}
