/**
 * `postline smtp-gateway`: SMTP submission for apps that only speak SMTP. Wires config, the TLS
 * certificate, API keys and sender domains (the send API's), the runtime (logger, metrics, Kafka
 * producer, event publisher, ops server) and the listeners, and shuts them down in order: stop
 * accepting SMTP (sessions in flight finish), then drain the producer and disconnect.
 * `startSmtpGateway` runs it in-process (npm start, tests).
 */
import fs from 'node:fs';
import type { PostlineConfig } from '../../shared/config.js';
import { ConfigError } from '../../shared/config-loader.js';
import { optionsReference } from '../../shared/config-docs.js';
import type { Shutdown } from '../../shared/lifecycle.js';
import { serviceMain, startRuntime, type RuntimeOptions } from '../../shared/service-runtime.js';
import { bootstrapApiKeys } from '../../shared/http/api-keys.js';
import { openStageApiKeys } from '../../shared/admin/open-admin-directory.js';
import { configuredSenderDomains, withAdministeredDomains } from '../../shared/sender-domains.js';
import { startGatewayServer, type GatewayServer } from './gateway-server.js';
import { instrumentGateway } from './gateway-metrics.js';
import { submitter } from './submitter.js';
import { ensureSelfSignedCert } from './self-signed-cert.js';
import { IdempotencyStore } from '../ingest/idempotency-store.js';

export interface SmtpGatewayHandle {
  server: GatewayServer;
  /** The STARTTLS port listened on. */
  submissionPort: number;
  /** The implicit-TLS port listened on. */
  submissionsPort: number;
  opsAddress?: string;
  shutdown: Shutdown;
  close(): Promise<boolean>;
}

/** Checks what the schema cannot; throws ConfigError listing every problem. */
export function checkSmtpGatewayConfig(config: PostlineConfig): void {
  const g = config.smtpGateway;
  const problems: string[] = [];
  if (!g.tlsKeyFile || !g.tlsCertFile) problems.push('POSTLINE_SMTP_GATEWAY_TLS_KEY_FILE and POSTLINE_SMTP_GATEWAY_TLS_CERT_FILE (smtpGateway.tlsKeyFile, tlsCertFile) must be set: AUTH only happens over TLS');
  if (g.maxMessageBytes > config.renderer.maxMessageBytes) problems.push(`smtpGateway.maxMessageBytes (${g.maxMessageBytes}) must not exceed renderer.maxMessageBytes (${config.renderer.maxMessageBytes})`);
  // The record carries the message base64-encoded.
  if (Math.ceil((g.maxMessageBytes * 4) / 3) + 64 * 1024 > config.renderer.maxRecordBytes) {
    problems.push(`smtpGateway.maxMessageBytes (${g.maxMessageBytes}) base64-encoded must fit renderer.maxRecordBytes (${config.renderer.maxRecordBytes}) with 64 KiB to spare`);
  }
  if (problems.length) throw new ConfigError(problems);
}

function readTls(config: PostlineConfig['smtpGateway']): { key: Buffer; cert: Buffer } {
  try {
    return { key: fs.readFileSync(config.tlsKeyFile), cert: fs.readFileSync(config.tlsCertFile) };
  } catch (err) {
    throw new ConfigError([`smtpGateway.tlsKeyFile / smtpGateway.tlsCertFile: ${(err as Error).message.split('\n')[0]}`]);
  }
}

/** Starts the SMTP gateway in this process; resolves once both ports listen. */
export async function startSmtpGateway(config: PostlineConfig, opts: RuntimeOptions = {}): Promise<SmtpGatewayHandle> {
  checkSmtpGatewayConfig(config);
  const tls = readTls(config.smtpGateway);
  const bootstrapKeys = bootstrapApiKeys(config.ingest);
  // No linger: every 250 waits for its record's ack, so a linger only adds to each message's wait.
  // Batches still form under load: what arrives while one is in flight goes out as the next.
  const rt = await startRuntime('smtp-gateway', config, { ...opts, producer: { lingerMs: 0 } });
  // Administered keys, revocations and sender domains (email.admin), read to its end before the first AUTH.
  const { admin, apiKeys } = await openStageApiKeys(rt, bootstrapKeys);
  if (apiKeys.size === 0) rt.logger.warn('no API keys configured (ingest.apiKeys / ingest.apiKeysFile) or created (email.admin): every AUTH will be refused with 535');
  // X-Postline-Idempotency-Key: the send API's claims (same topic, same rules, same window).
  const table = IdempotencyStore.table(rt.kafka, rt.producer, rt.logger);
  const idempotency = new IdempotencyStore(table, { ttlMs: config.ingest.idempotencyTtlMs, leaseMs: config.ingest.idempotencyLeaseMs });
  const evictor = setInterval(() => table.evict((_key, claim) => claim.expiresAt < Date.now()), 10 * 60_000);
  evictor.unref();
  let server: GatewayServer;
  let opsAddress: string | undefined;
  try {
    // Loaded before the first message, so a restarted replica already knows every live key.
    await table.start();
    server = await startGatewayServer({
      ...config.smtpGateway,
      tls,
      maxRecordBytes: config.renderer.maxRecordBytes,
      // Submitting is sending: a key needs the `send` scope (a read-only or admin-only key gets 535).
      authenticate: (key) => apiKeys.authorize(key, 'send'),
      senderDomains: withAdministeredDomains(configuredSenderDomains(config.ingest.senderDomains), admin.directory),
      submit: submitter({ producer: rt.producer, events: rt.events, idempotency, timeoutMs: config.smtpGateway.produceTimeoutMs, logger: rt.logger }),
      logger: rt.logger,
    });
    instrumentGateway(server, rt.registry);
    rt.shutdown.add('stop accepting SMTP', () => server.close());
    rt.shutdown.add('stop idempotency table', () => {
      clearInterval(evictor);
      return table.stop();
    });
    rt.addFinalShutdownSteps();
    opsAddress = await rt.startOps();
  } catch (err) {
    clearInterval(evictor);
    await table.stop().catch(() => undefined);
    await rt.shutdown.run();
    throw err;
  }
  const host = config.smtpGateway.host;
  rt.logger.info({ submission: `${host}:${server.submissionPort}`, submissions: `${host}:${server.submissionsPort}`, ops: opsAddress, tenants: apiKeys.size }, 'SMTP gateway ready');
  return { server, submissionPort: server.submissionPort, submissionsPort: server.submissionsPort, opsAddress, shutdown: rt.shutdown, close: () => rt.shutdown.run() };
}

const help = (): string => `usage: postline smtp-gateway [--self-signed-cert <dir>]

Runs the SMTP submission gateway: port smtpGateway.submissionPort with STARTTLS and
smtpGateway.submissionsPort with implicit TLS, AUTH PLAIN or LOGIN with an API key as the
password (any username). Accepted messages go to the same request lanes as POST /v1/emails;
X-Postline-Priority, X-Postline-Tags, X-Postline-List-Id and X-Postline-Idempotency-Key
are honoured and stripped.
/metrics, /healthz and /readyz on ops.port. --self-signed-cert <dir>: without a configured
certificate, use a self-signed one made in <dir> (demos, docker compose; clients must accept it).
Configured by environment variables (or a JSON file named by POSTLINE_CONFIG); API keys and
sender domains are the send API's:

${optionsReference(['smtpGateway.', 'ingest.apiKeys', 'ingest.senderDomains', 'ingest.idempotency', 'admin.', 'kafka.', 'ops.'])}
`;

/** The `postline smtp-gateway` command. */
export async function main(argv: string[] = []): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(help());
    return;
  }
  const at = argv.indexOf('--self-signed-cert');
  const certDir = at >= 0 ? argv[at + 1] : undefined;
  await serviceMain('smtp-gateway', (config) => {
    if (!certDir || config.smtpGateway.tlsKeyFile) return startSmtpGateway(config);
    const cert = ensureSelfSignedCert(certDir);
    return startSmtpGateway({ ...config, smtpGateway: { ...config.smtpGateway, tlsKeyFile: cert.keyFile, tlsCertFile: cert.certFile } });
  });
}
