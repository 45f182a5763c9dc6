/**
 * An inbound service on the embedded broker for tests: signing keys, a bounce domain, an SMTP
 * client (nodemailer) to talk to it, and a reader of `email.events`.
 */
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import nodemailer from 'nodemailer';
import type { Registry } from 'prom-client';
import { loadPostlineConfig, type PostlineConfig } from '../../shared/config.js';
import { createRegistry } from '../../shared/metrics.js';
import { Topics } from '../../shared/topics.js';
import { FeedbackKeyring, returnPathOf, UNSUBSCRIBE_MAILTO_PREFIX, type RefInput } from '../../shared/feedback/feedback-token.js';
import type { EmailEvent } from '../../shared/contracts/email-event.js';
import { startInbound, type InboundHandle } from '../../services/inbound/main.js';
import { startTestBroker, waitFor, type TestBroker } from '../helpers/broker.js';
import { TopicReader } from '../helpers/topic-reader.js';

export const DOMAIN = 'bounces.example.com';
export const KEYS = [{ id: 3, secret: 'inbound-test-secret-'.repeat(3) }];
export const keyring = new FeedbackKeyring(KEYS);

const samples = path.join(import.meta.dirname, 'samples');
export const sampleText = (name: string): string => fs.readFileSync(path.join(samples, name), 'utf8');

export interface Copy {
  messageId: string;
  tenant: string;
  recipient: string;
  fromDomain?: string;
  listId?: string;
}

export const returnPath = (c: Copy): string => returnPathOf(keyring, DOMAIN, c);
export const refToken = (c: Copy): string => keyring.sign({ ...c, purpose: 'ref' } as RefInput);
export const unsubscribeAddress = (c: Copy): string => `${UNSUBSCRIBE_MAILTO_PREFIX}${keyring.sign({ ...c, purpose: 'unsubscribe' } as RefInput)}@${DOMAIN}`;

/** A sample with its placeholders filled in for one recipient's copy. */
export function fill(sample: string, c: Copy, sampleRecipient: string): string {
  return sampleText(sample).replaceAll('b-RETURNPATH@bounces.example.com', returnPath(c)).replaceAll('REF-TOKEN', refToken(c)).replaceAll(sampleRecipient, c.recipient);
}

export interface SmtpReply {
  ok: boolean;
  code?: number;
  response?: string;
  rejected?: string[];
}

export class InboundHarness {
  private constructor(
    public broker: TestBroker,
    readonly reader: TopicReader,
  ) {}

  readonly instances: InboundHandle[] = [];
  /** The service `start` began with (default options). */
  first!: InboundHandle & { registry: Registry };

  static async start(): Promise<InboundHarness> {
    const broker = await startTestBroker();
    const h = new InboundHarness(broker, new TopicReader(broker.bootstrap, [Topics.events]));
    // The topics exist before the reader subscribes.
    h.first = await h.inbound();
    await h.reader.start();
    return h;
  }

  config(extra: Record<string, unknown> = {}): PostlineConfig {
    return loadPostlineConfig({
      env: {},
      overrides: {
        'log.level': 'silent',
        'kafka.brokers': [this.broker.bootstrap],
        'kafka.partitions': 1,
        'ops.host': '127.0.0.1',
        'ops.port': 0,
        'feedback.keys': KEYS,
        'feedback.returnPathDomain': DOMAIN,
        'inbound.host': '127.0.0.1',
        'inbound.port': 0,
        ...extra,
      },
    });
  }

  async inbound(extra: Record<string, unknown> = {}, registry: Registry = createRegistry('inbound')): Promise<InboundHandle & { registry: Registry }> {
    const handle = await startInbound(this.config(extra), { logger: pino({ level: process.env.LOG_LEVEL ?? 'silent' }), registry });
    this.instances.push(handle);
    return Object.assign(handle, { registry });
  }

  /** Sends `raw` with envelope `from` → `to` to `port`; resolves with the server's answer (never throws on an SMTP refusal). */
  async send(port: number, to: string[], raw: string | Buffer, from = ''): Promise<SmtpReply> {
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true, connectionTimeout: 30_000, socketTimeout: 60_000 });
    try {
      const info = await transport.sendMail({ envelope: { from, to }, raw });
      return { ok: true, code: 250, response: info.response, rejected: (info.rejected as string[]) ?? [] };
    } catch (err) {
      const e = err as { responseCode?: number; response?: string; message: string; rejected?: string[] };
      return { ok: false, code: e.responseCode, response: e.response ?? e.message, rejected: e.rejected };
    } finally {
      transport.close();
    }
  }

  events(messageId: string): EmailEvent[] {
    return this.reader.json<EmailEvent>(Topics.events).filter((e) => e.messageId === messageId);
  }

  waitForEvents(messageId: string, n = 1): Promise<EmailEvent[]> {
    return waitFor(() => {
      const got = this.events(messageId);
      return got.length >= n ? got : undefined;
    }, 30_000, `${n} event(s) of ${messageId}`);
  }

  async stopBroker(): Promise<void> {
    await this.broker.close();
  }

  async restartBroker(): Promise<void> {
    this.broker = await startTestBroker({ port: this.broker.port, dataDir: this.broker.dataDir });
  }

  async stop(): Promise<void> {
    for (const i of this.instances) await i.close();
    await this.reader.stop();
    await this.broker.destroy();
  }
}

/** The value of counter `name` with `labels` in `registry` (0 when never incremented). */
export async function counter(registry: Registry, name: string, labels: Record<string, string>): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return 0;
  const { values } = await metric.get();
  return values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((s, v) => s + v.value, 0);
}
