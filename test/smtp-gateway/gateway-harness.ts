/**
 * The SMTP gateway on the whole path for tests: the embedded broker, the gateway, renderer and
 * dispatcher in this process, an SMTP sink as the relay, a self-signed certificate, and two
 * tenants whose names are prefixes of each other (`acme`, `acme/eu`), each with its own key and
 * sender domain. Clients: nodemailer (`send`) and a raw socket (smtp-client.ts).
 */
import fs from 'node:fs';
import pino from 'pino';
import nodemailer, { type SendMailOptions, type TransportOptions } from 'nodemailer';
import type { Registry } from 'prom-client';
import { loadPostlineConfig, PRIORITIES, type PostlineConfig } from '../../shared/config.js';
import { createRegistry } from '../../shared/metrics.js';
import { Topics } from '../../shared/topics.js';
import { hashApiKey } from '../../shared/http/api-keys.js';
import type { EmailEvent } from '../../shared/contracts/email-event.js';
import type { DeadLetter } from '../../shared/contracts/dead-letter.js';
import { startSmtpGateway, type SmtpGatewayHandle } from '../../services/smtp-gateway/main.js';
import { ensureSelfSignedCert } from '../../services/smtp-gateway/self-signed-cert.js';
import { startRenderer, type RunningRenderer } from '../../services/renderer/main.js';
import { startDispatcher, type RunningDispatcher } from '../../services/dispatcher/main.js';
import { startTestBroker, tempDir, uniqueName, waitFor, type TestBroker } from '../helpers/broker.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { TopicReader } from '../helpers/topic-reader.js';

export const KEYS = { acme: 'pl_gateway_test_acme_0123456789abcdef', 'acme/eu': 'pl_gateway_test_acme_eu_0123456789abcd' } as const;
/** A key of acme's without the `send` scope: it may read, not submit. */
export const READ_ONLY_KEY = 'pl_gateway_test_acme_read_only_0123456789';
export const DOMAINS = { acme: 'acme.test', 'acme/eu': 'eu.acme.test' } as const;

export type SendResult = { ok: true; messageId: string; response: string } | { ok: false; code?: number; response: string };

const silent = () => pino({ level: process.env.LOG_LEVEL ?? 'silent' });

export class GatewayHarness {
  gateway!: SmtpGatewayHandle & { registry: Registry };
  renderer?: RunningRenderer;
  dispatcher?: RunningDispatcher;
  reader!: TopicReader;
  config!: PostlineConfig;

  private constructor(
    public broker: TestBroker,
    readonly sink: SmtpSink,
    readonly dir: string,
  ) {}

  /** `pipeline: false` starts only the gateway (no renderer or dispatcher). */
  static async start(overrides: Record<string, unknown> = {}, opts: { pipeline?: boolean } = {}): Promise<GatewayHarness> {
    const broker = await startTestBroker();
    const sink = await startSmtpSink({ greetingDelay: false });
    const h = new GatewayHarness(broker, sink, tempDir('postline-gateway-'));
    try {
      const cert = ensureSelfSignedCert(h.dir);
      h.config = loadPostlineConfig({
        env: {},
        overrides: {
          'log.level': 'silent',
          'kafka.brokers': [broker.bootstrap],
          'kafka.partitions': 1,
          'ops.host': '127.0.0.1',
          'ops.port': 0,
          'ingest.apiKeys': [...Object.entries(KEYS).map(([tenant, key]) => ({ tenant, keyHash: hashApiKey(key) })), { tenant: 'acme', keyHash: hashApiKey(READ_ONLY_KEY), scopes: ['read'] }],
          'ingest.senderDomains': Object.fromEntries(Object.entries(DOMAINS).map(([t, d]) => [t, [d]])),
          'smtpGateway.host': '127.0.0.1',
          'smtpGateway.submissionPort': 0,
          'smtpGateway.submissionsPort': 0,
          'smtpGateway.tlsKeyFile': cert.keyFile,
          'smtpGateway.tlsCertFile': cert.certFile,
          'dispatcher.relay.host': sink.host,
          'dispatcher.relay.port': sink.port,
          'dispatcher.fetchMaxWaitMs': 100,
          ...overrides,
        },
      });
      const registry = createRegistry('smtp-gateway');
      h.gateway = Object.assign(await startSmtpGateway(h.config, { logger: silent(), registry }), { registry });
      h.reader = await new TopicReader(broker.bootstrap, [Topics.events, Topics.dead, ...PRIORITIES.map((p) => Topics.requestedFor(p))]).start();
      if (opts.pipeline !== false) {
        h.dispatcher = await startDispatcher(h.config, { logger: silent(), ops: false });
        h.renderer = await startRenderer(h.config, { logger: silent(), groupId: uniqueName('renderer'), ops: false });
      }
    } catch (err) {
      await h.stop();
      throw err;
    }
    return h;
  }

  /** A nodemailer transport to the gateway: STARTTLS on the submission port, or implicit TLS. */
  transport(key: string, opts: { implicitTls?: boolean; user?: string; method?: 'PLAIN' | 'LOGIN'; pool?: boolean } = {}) {
    return nodemailer.createTransport({
      host: '127.0.0.1',
      port: opts.implicitTls ? this.gateway.submissionsPort : this.gateway.submissionPort,
      secure: !!opts.implicitTls,
      requireTLS: !opts.implicitTls,
      tls: { rejectUnauthorized: false },
      auth: { user: opts.user ?? 'apikey', pass: key },
      authMethod: opts.method ?? 'PLAIN',
      ...(opts.pool ? { pool: true, maxConnections: 4 } : {}),
      connectionTimeout: 30_000,
      socketTimeout: 60_000,
    } as TransportOptions);
  }

  /** Sends one message through nodemailer; never throws on an SMTP refusal. */
  async send(key: string, mail: SendMailOptions, opts: Parameters<GatewayHarness['transport']>[1] = {}): Promise<SendResult> {
    const transport = this.transport(key, opts);
    try {
      const info = await transport.sendMail(mail);
      const id = /queued as (\S+)/.exec(info.response)?.[1];
      if (!id) throw new Error(`no message id in ${info.response}`);
      return { ok: true, messageId: id, response: info.response };
    } catch (err) {
      const e = err as { responseCode?: number; response?: string; message: string };
      return { ok: false, code: e.responseCode, response: e.response ?? e.message };
    } finally {
      transport.close();
    }
  }

  events(type?: EmailEvent['type'], messageId?: string): EmailEvent[] {
    return this.reader.json<EmailEvent>(Topics.events).filter((e) => (!type || e.type === type) && (!messageId || e.messageId === messageId));
  }

  deadLetters(): DeadLetter[] {
    return this.reader.json<DeadLetter>(Topics.dead);
  }

  waitForEvent(type: EmailEvent['type'], messageId: string, timeoutMs = 60_000): Promise<EmailEvent> {
    return waitFor(() => this.events(type, messageId)[0], timeoutMs, `a ${type} event of ${messageId}`);
  }

  async stop(): Promise<void> {
    await this.renderer?.close();
    await this.dispatcher?.close();
    await this.gateway?.close();
    await this.reader?.stop();
    await this.sink.close();
    await this.broker.destroy();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /** The value of counter `name` with `labels` in the gateway's registry (0 when never incremented). */
  async counter(name: string, labels: Record<string, string> = {}): Promise<number> {
    const metric = this.gateway.registry.getSingleMetric(name);
    if (!metric) return 0;
    const { values } = await metric.get();
    return values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((s, v) => s + v.value, 0);
  }
}
