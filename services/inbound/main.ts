/**
 * `postline inbound`: the SMTP service of the bounce domain and of tenants' inbound domains. Wires
 * config, the feedback keyring, the runtime (logger, metrics, Kafka producer, event publisher, ops
 * server), the inbound route table (`email.inbound-routes`) and the listener,
 * and shuts them down in order: stop accepting SMTP (sessions in flight finish), then drain the
 * producer and disconnect. `startInbound` runs it in-process (npm start, tests).
 */
import fs from 'node:fs';
import type { PostlineConfig } from '../../shared/config.js';
import { ConfigError } from '../../shared/config-loader.js';
import { optionsReference } from '../../shared/config-docs.js';
import type { Shutdown } from '../../shared/lifecycle.js';
import { serviceMain, startRuntime, type RuntimeOptions } from '../../shared/service-runtime.js';
import { loadFeedbackKeyring } from '../../shared/feedback/feedback-keys.js';
import { startInboundServer, type InboundServer } from './inbound-server.js';
import { instrumentInbound } from './inbound-metrics.js';
import { classifyBounce } from '../../shared/bounces/classify.js';
import os from 'node:os';
import { Topics, recordLimitFor } from '../../shared/topics.js';
import { InboundMailContract } from '../../shared/contracts/inbound-mail.js';
import { openInboundRouteBook } from '../../shared/inbound-routes/inbound-route-book.js';
import { InboundRoutesReceiver } from './inbound-routes-receiver.js';
import { dnsResolverFor } from './inbound-mail-auth.js';
import type { DNSResolver } from 'mailauth';

/** What tests may replace: the DNS of the SPF, DKIM and DMARC checks (the fake internet's). */
export interface StartInboundOptions extends RuntimeOptions {
  resolver?: DNSResolver;
}

export interface InboundHandle {
  server: InboundServer;
  /** The SMTP port listened on. */
  port: number;
  opsAddress?: string;
  shutdown: Shutdown;
  close(): Promise<boolean>;
}

/** Checks what the schema cannot; throws ConfigError listing every problem. */
export function checkInboundConfig(config: PostlineConfig): void {
  const problems: string[] = [];
  if (!config.feedback.returnPathDomain) problems.push('POSTLINE_FEEDBACK_RETURN_PATH_DOMAIN (feedback.returnPathDomain) must be set: the inbound service receives mail for that domain');
  if (config.feedback.keys.length === 0 && !config.feedback.keysFile) problems.push('POSTLINE_FEEDBACK_KEYS (feedback.keys) or feedback.keysFile must hold a key: without one no token verifies');
  if (!!config.inbound.tlsKeyFile !== !!config.inbound.tlsCertFile) problems.push('inbound.tlsKeyFile and inbound.tlsCertFile must be set together');
  if (problems.length) throw new ConfigError(problems);
}

function readTls(config: PostlineConfig['inbound']): { key: Buffer; cert: Buffer } | undefined {
  if (!config.tlsKeyFile) return undefined;
  try {
    return { key: fs.readFileSync(config.tlsKeyFile), cert: fs.readFileSync(config.tlsCertFile) };
  } catch (err) {
    throw new ConfigError([`inbound.tlsKeyFile / inbound.tlsCertFile: ${(err as Error).message.split('\n')[0]}`]);
  }
}

/** Starts the inbound SMTP service in this process; resolves once it listens. */
export async function startInbound(config: PostlineConfig, opts: StartInboundOptions = {}): Promise<InboundHandle> {
  checkInboundConfig(config);
  const keyring = loadFeedbackKeyring(config.feedback);
  const tls = readTls(config.inbound);
  const rt = await startRuntime('inbound', config, opts);
  let server: InboundServer | undefined;
  let opsAddress: string | undefined;
  try {
    // Added first so it runs first: sessions in flight finish while the route table still reads.
    rt.shutdown.add('stop accepting SMTP', () => server?.close());
    const routeBook = await openInboundRouteBook({ kafka: rt.kafka, producer: rt.producer, logger: rt.logger, onChange: (domain, route) => rt.logger.info({ domain, tenant: route?.tenant }, route ? 'inbound route in force' : 'inbound route released') });
    rt.shutdown.add('stop inbound route table', () => routeBook.stop());
    const routes = new InboundRoutesReceiver({
      book: routeBook.book,
      limits: config.inboundRoutes,
      resolver: opts.resolver ?? dnsResolverFor(config.inboundRoutes.dnsServers, config.inboundRoutes.authTimeoutMs),
      authTimeoutMs: config.inboundRoutes.authTimeoutMs,
      mta: config.inbound.hostname || os.hostname(),
      // email.inbound is created for the renderer's largest message (topicSpecs); 64 KiB is left for the batch around the record.
      maxRecordBytes: recordLimitFor(config.renderer.maxMessageBytes) - 64 * 1024,
      produce: (record) => rt.producer.send(Topics.inbound, { key: record.id, value: InboundMailContract.encode(record) }),
      publish: (event) => rt.events.publish(event),
    });
    server = await startInboundServer({
      ...config.inbound,
      domain: config.feedback.returnPathDomain,
      complaintLocalParts: config.inbound.complaintAddresses,
      keyring,
      classify: classifyBounce,
      publish: (event) => rt.events.publish(event),
      logger: rt.logger,
      ...(tls ? { tls } : {}),
      routes,
    });
    instrumentInbound(server, rt.registry);
    rt.addFinalShutdownSteps();
    opsAddress = await rt.startOps();
  } catch (err) {
    await rt.shutdown.run();
    throw err;
  }
  rt.logger.info({ smtp: `${config.inbound.host}:${server.port}`, domain: config.feedback.returnPathDomain, ops: opsAddress }, 'inbound SMTP service ready');
  return { server, port: server.port, opsAddress, shutdown: rt.shutdown, close: () => rt.shutdown.run() };
}

const help = (): string => `usage: postline inbound

Runs the SMTP service of the bounce domain (feedback.returnPathDomain): asynchronous bounces
(DSN and the common non-standard formats) to signed return paths, complaint reports (ARF) to
the complaint addresses, and mailto unsubscribes, published as bounced, complained and
unsubscribed events. Also the mail exchanger of tenants' inbound domains (inbound routes, claimed
with POST /v1/inbound-routes): such mail is parsed, checked (SPF, DKIM, DMARC) and produced to
email.inbound with a received event. /metrics, /healthz and /readyz on ops.port. Configured by
environment variables (or a JSON file named by POSTLINE_CONFIG):

${optionsReference(['inbound.', 'inboundRoutes.', 'feedback.', 'kafka.', 'ops.'])}
`;

/** The `postline inbound` command. */
export async function main(argv: string[] = []): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(help());
    return;
  }
  await serviceMain('inbound', (config) => startInbound(config));
}
