/**
 * The inbound service with inbound routes on real parts: the embedded broker, a fake DNS (SPF,
 * DKIM and DMARC records of the senders), the route book on `email.inbound-routes` (what the
 * API writes), an SMTP client (nodemailer), and a reader of `email.inbound` and `email.events`.
 */
import pino from 'pino';
import nodemailer from 'nodemailer';
import net from 'node:net';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import type { Registry } from 'prom-client';
import { loadPostlineConfig } from '../../shared/config.js';
import { createRegistry } from '../../shared/metrics.js';
import { Topics } from '../../shared/topics.js';
import { BatchingProducer } from '../../shared/kafka/batching-producer.js';
import { openInboundRouteBook, type InboundRouteBook } from '../../shared/inbound-routes/inbound-route-book.js';
import type { EmailEvent } from '../../shared/contracts/email-event.js';
import type { InboundMail } from '../../shared/contracts/inbound-mail.js';
import { startInbound, type InboundHandle } from '../../services/inbound/main.js';
import { startTestBroker, waitFor, type TestBroker } from '../helpers/broker.js';
import { TopicReader } from '../helpers/topic-reader.js';
import { startFakeDns, type FakeDns } from '../helpers/fake-internet/dns-server.js';

export const BOUNCE_DOMAIN = 'bounces.example.com';
const KEYS = [{ id: 4, secret: 'inbound-routes-test-secret-'.repeat(2) }];

export interface SmtpReply {
  code?: number;
  response?: string;
  rejected?: string[];
}

export class RoutesHarness {
  readonly instances: Array<InboundHandle & { registry: Registry }> = [];
  private constructor(
    public broker: TestBroker,
    readonly dns: FakeDns,
    readonly reader: TopicReader,
    readonly book: InboundRouteBook,
    private readonly stopBook: () => Promise<void>,
    private readonly raw: Producer,
  ) {}

  static async start(): Promise<RoutesHarness> {
    const broker = await startTestBroker();
    const dns = await startFakeDns();
    const kafka = new Kafka({ clientId: 'routes-test', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
    const logger = pino({ level: 'silent' });
    const raw = kafka.producer();
    const probe = new RoutesHarness(broker, dns, undefined as never, undefined as never, async () => {}, raw);
    // The first service creates the topics the book and the reader read.
    await probe.inbound();
    await raw.connect();
    const { book, stop } = await openInboundRouteBook({ kafka, producer: new BatchingProducer(raw), logger });
    const reader = await new TopicReader(broker.bootstrap, [Topics.inbound, Topics.events]).start();
    const h = new RoutesHarness(broker, dns, reader, book, stop, raw);
    h.instances.push(...probe.instances);
    return h;
  }

  get first(): InboundHandle & { registry: Registry } {
    return this.instances[0];
  }

  async inbound(extra: Record<string, unknown> = {}): Promise<InboundHandle & { registry: Registry }> {
    const config = loadPostlineConfig({
      env: {},
      overrides: {
        'log.level': 'silent',
        'kafka.brokers': [this.broker.bootstrap],
        'kafka.partitions': 1,
        'ops.host': '127.0.0.1',
        'ops.port': 0,
        'feedback.keys': KEYS,
        'feedback.returnPathDomain': BOUNCE_DOMAIN,
        'inbound.host': '127.0.0.1',
        'inbound.port': 0,
        'inbound.hostname': 'mx.postline.test',
        ...extra,
      },
    });
    const registry = createRegistry('inbound');
    const handle = await startInbound(config, { logger: pino({ level: process.env.LOG_LEVEL ?? 'silent' }), registry, resolver: this.dns.resolver() as never });
    const withRegistry = Object.assign(handle, { registry });
    this.instances.push(withRegistry);
    return withRegistry;
  }

  /** Sends `raw` from 127.0.0.1 with EHLO `helo`; resolves with the server's answer (never throws on a refusal). */
  async send(port: number, envelope: { from: string; to: string[] }, raw: string | Buffer, helo = 'mta.sender.test'): Promise<SmtpReply> {
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true, name: helo, connectionTimeout: 30_000, socketTimeout: 60_000 });
    try {
      const info = await transport.sendMail({ envelope, raw });
      return { code: 250, response: info.response, rejected: (info.rejected as string[]) ?? [] };
    } catch (err) {
      const e = err as { responseCode?: number; response?: string; message: string; rejected?: string[] };
      return { code: e.responseCode, response: e.response ?? e.message, rejected: e.rejected };
    } finally {
      transport.close();
    }
  }

  /** Waits until `address` is accepted by the service at `port` (the route reached it), probing with RCPT only. */
  async waitRouted(port: number, address: string, routed = true): Promise<void> {
    await waitFor(async () => {
      const reply = await this.rcpt(port, address);
      return routed ? reply === 250 : reply === 550;
    }, 15_000, `${address} to be ${routed ? '' : 'no longer '}routed`);
  }

  /** The reply code to RCPT TO `address`, over a plain SMTP dialogue that ends before DATA. */
  rcpt(port: number, address: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1');
      const commands = ['EHLO probe.sender.test', 'MAIL FROM:<probe@sender.test>', `RCPT TO:<${address}>`];
      let buffered = '';
      socket.setEncoding('utf8');
      socket.on('error', reject);
      socket.on('data', (chunk: string) => {
        buffered += chunk;
        // A complete reply ends with a line `NNN text` (no dash after the code).
        const lines = buffered.split('\r\n');
        const last = lines.filter((l) => /^\d{3} /.test(l)).at(-1);
        if (!last) return;
        buffered = '';
        const next = commands.shift();
        if (next) socket.write(`${next}\r\n`);
        else {
          socket.end('QUIT\r\n');
          resolve(Number(last.slice(0, 3)));
        }
      });
    });
  }

  records(predicate: (r: InboundMail) => boolean = () => true): InboundMail[] {
    return this.reader.json<InboundMail>(Topics.inbound).filter(predicate);
  }

  waitForRecords(predicate: (r: InboundMail) => boolean, n = 1): Promise<InboundMail[]> {
    return waitFor(() => {
      const got = this.records(predicate);
      return got.length >= n ? got : undefined;
    }, 30_000, `${n} inbound record(s)`);
  }

  events(messageId: string): EmailEvent[] {
    return this.reader.json<EmailEvent>(Topics.events).filter((e) => e.messageId === messageId);
  }

  waitForEvent(messageId: string): Promise<EmailEvent> {
    return waitFor(() => this.events(messageId)[0], 30_000, `the event of ${messageId}`);
  }

  async stopBroker(): Promise<void> {
    await this.broker.close();
  }

  async restartBroker(): Promise<void> {
    this.broker = await startTestBroker({ port: this.broker.port, dataDir: this.broker.dataDir });
  }

  async stop(): Promise<void> {
    for (const i of this.instances) await i.close();
    await this.stopBook();
    await this.raw.disconnect();
    await this.reader.stop();
    await this.dns.close();
    await this.broker.destroy();
  }
}
