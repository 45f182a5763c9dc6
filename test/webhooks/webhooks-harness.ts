/**
 * What the webhook delivery tests share: an embedded broker, the webhooks service started
 * in-process with loopback allowed, an endpoint book of its own (the API's view of
 * email.webhooks), real HTTP receivers on 127.0.0.1 (port 0) that record every request and
 * answer as scripted, and a producer for email.events and email.inbound.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import pino from 'pino';
import { loadPostlineConfig, type PostlineConfig } from '../../shared/config.js';
import { Topics } from '../../shared/topics.js';
import { EMAIL_EVENT_VERSION, EmailEventContract, type EmailEvent } from '../../shared/contracts/email-event.js';
import { BatchingProducer } from '../../shared/kafka/batching-producer.js';
import { openEndpointBook, type EndpointBook, type EndpointInput } from '../../shared/webhooks/endpoint-book.js';
import { startWebhooks, type WebhooksHandle } from '../../services/webhooks/main.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';

export interface Received {
  at: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  json: { type: string; timestamp: string; data: Record<string, unknown> };
  status: number;
}

export interface Receiver {
  url: string;
  requests: Received[];
  /** What to answer: a status, or 'hang' (never answer). */
  script: (r: Omit<Received, 'status'>, n: number) => number | 'hang';
  close(): Promise<void>;
}

export async function startReceiver(script: Receiver['script'] = () => 200): Promise<Receiver> {
  const hanging = new Set<http.ServerResponse>();
  const r: Receiver = { url: '', requests: [], script, close: async () => undefined };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const seen = { at: Date.now(), headers: req.headers, body, json: JSON.parse(body) };
      const answer = r.script(seen, r.requests.length);
      if (answer === 'hang') {
        hanging.add(res);
        r.requests.push({ ...seen, status: 0 });
        return;
      }
      r.requests.push({ ...seen, status: answer });
      res.writeHead(answer, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  r.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  r.close = async () => {
    for (const res of hanging) res.destroy();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  };
  return r;
}

export class WebhooksHarness {
  service!: WebhooksHandle;
  book!: EndpointBook;
  private stopBook!: () => Promise<void>;
  producer!: Producer;
  batching!: BatchingProducer;
  kafka!: Kafka;
  readonly receivers: Receiver[] = [];

  private constructor(readonly broker: TestBroker) {}

  static async start(overrides: Record<string, unknown> = {}): Promise<WebhooksHarness> {
    const h = new WebhooksHarness(await startTestBroker());
    h.service = await startWebhooks(h.config(overrides), { ops: false, onConsumerDead: () => undefined });
    h.kafka = new Kafka({ clientId: 'webhooks-test', brokers: [h.broker.bootstrap], logLevel: logLevel.NOTHING });
    h.producer = h.kafka.producer();
    await h.producer.connect();
    h.batching = new BatchingProducer(h.producer);
    const opened = await openEndpointBook({ kafka: h.kafka, producer: h.batching, logger: pino({ level: 'silent' }) });
    h.book = opened.book;
    h.stopBook = opened.stop;
    return h;
  }

  config(overrides: Record<string, unknown> = {}): PostlineConfig {
    return loadPostlineConfig({
      env: {},
      overrides: {
        'log.level': process.env.LOG_LEVEL ?? 'silent',
        'kafka.brokers': [this.broker.bootstrap],
        'kafka.partitions': 2,
        'ops.host': '127.0.0.1',
        'ops.port': 0,
        'webhooks.allowPrivate': ['127.0.0.1'],
        'webhooks.allowHttp': true,
        'webhooks.timeoutMs': 2000,
        ...overrides,
      },
    });
  }

  async receiver(script?: Receiver['script']): Promise<Receiver> {
    const r = await startReceiver(script);
    this.receivers.push(r);
    return r;
  }

  endpoint(tenant: string, input: EndpointInput) {
    return this.book.create(tenant, input);
  }

  event(tenant: string, type: EmailEvent['type'], more: Partial<EmailEvent> = {}): EmailEvent {
    return { schemaVersion: EMAIL_EVENT_VERSION, eventId: randomUUID(), type, messageId: `msg-${randomUUID()}`, tenant, at: new Date().toISOString(), stage: 'test', ...more };
  }

  async produce(...events: EmailEvent[]): Promise<void> {
    await this.producer.send({ topic: Topics.events, acks: -1, messages: events.map((e) => ({ key: e.messageId, value: EmailEventContract.encode(e) })) });
  }

  async stop(): Promise<void> {
    await this.service.close();
    await this.stopBook();
    await this.producer.disconnect();
    for (const r of this.receivers) await r.close();
    await this.broker.destroy();
  }
}
