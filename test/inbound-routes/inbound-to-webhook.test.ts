/**
 * Inbound routes end to end (issue 14): a tenant claims an inbound domain, a mail server sends a
 * message to it over SMTP, the inbound service parses it onto email.inbound, and the webhooks
 * service delivers it to the tenant's endpoint as `inbound.received`, signed with Standard
 * Webhooks — verified here with the `standardwebhooks` package. A tenant whose name is a prefix
 * of the other's (`acme`, `acme/eu`) gets nothing of it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import nodemailer from 'nodemailer';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import pino from 'pino';
import { Webhook } from 'standardwebhooks';
import { loadPostlineConfig } from '../../shared/config.js';
import { BatchingProducer } from '../../shared/kafka/batching-producer.js';
import { openEndpointBook, type EndpointBook } from '../../shared/webhooks/endpoint-book.js';
import { startWebhooks, type WebhooksHandle } from '../../services/webhooks/main.js';
import { startReceiver, type Receiver } from '../webhooks/webhooks-harness.js';
import { RoutesHarness } from './routes-harness.js';
import { waitFor } from '../helpers/broker.js';

let h: RoutesHarness;
let webhooks: WebhooksHandle;
let raw: Producer;
let endpoints: { book: EndpointBook; stop(): Promise<void> };
const receivers: Receiver[] = [];

before(async () => {
  h = await RoutesHarness.start();
  h.dns.txt('sender.test', 'v=spf1 ip4:127.0.0.1 -all');
  webhooks = await startWebhooks(
    loadPostlineConfig({
      env: {},
      overrides: {
        'log.level': 'silent',
        'kafka.brokers': [h.broker.bootstrap],
        'kafka.partitions': 1,
        'ops.host': '127.0.0.1',
        'ops.port': 0,
        'webhooks.allowPrivate': ['127.0.0.1'],
        'webhooks.allowHttp': true,
      },
    }),
    { ops: false, onConsumerDead: () => undefined },
  );
  const kafka = new Kafka({ clientId: 'inbound-to-webhook-test', brokers: [h.broker.bootstrap], logLevel: logLevel.NOTHING });
  raw = kafka.producer();
  await raw.connect();
  endpoints = await openEndpointBook({ kafka, producer: new BatchingProducer(raw), logger: pino({ level: 'silent' }) });
});
after(async () => {
  await webhooks?.close();
  await endpoints?.stop();
  await raw?.disconnect();
  for (const r of receivers) await r.close();
  await h?.stop();
});

test('mail to a claimed inbound domain reaches the tenant\'s webhook as a signed inbound.received, and no other tenant\'s', async () => {
  const acme = await startReceiver();
  const eu = await startReceiver();
  receivers.push(acme, eu);
  const endpoint = await endpoints.book.create('acme', { url: acme.url, eventTypes: ['inbound.received'] });
  await endpoints.book.create('acme/eu', { url: eu.url, eventTypes: ['inbound.received'] });
  await h.book.claim('acme', 'in.acme.test');
  await h.waitRouted(h.first.port, 'help@in.acme.test');

  const message = await nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'windows' }).sendMail({
    from: 'Ann <ann@sender.test>',
    to: 'help@in.acme.test',
    subject: 'My order',
    text: 'Where is it?',
    html: '<p>Where is it?</p>',
    attachments: [{ filename: 'receipt.txt', content: 'order 42' }],
  });
  const reply = await h.send(h.first.port, { from: 'ann@sender.test', to: ['help@in.acme.test'] }, message.message as Buffer);
  assert.equal(reply.code, 250, reply.response);

  const delivered = await waitFor(() => acme.requests.find((r) => r.json.type === 'inbound.received'), 30_000, 'the inbound.received webhook');
  const verified = new Webhook(endpoint.secrets[0].secret).verify(delivered.body, delivered.headers as Record<string, string>) as { data: Record<string, unknown> };
  const mail = verified.data as { id: string; tenant: string; domain: string; subject: string; text: string; html: string; envelope: { from: string; to: string[] }; attachments: Array<{ filename: string; content: string }>; auth?: { spf?: string } };
  assert.equal(delivered.headers['webhook-id'], mail.id);
  assert.deepEqual([mail.tenant, mail.domain, mail.subject, mail.text.trim()], ['acme', 'in.acme.test', 'My order', 'Where is it?']);
  assert.match(mail.html, /Where is it\?/);
  assert.deepEqual(mail.envelope, { from: 'ann@sender.test', to: ['help@in.acme.test'] });
  assert.deepEqual(mail.attachments.map((a) => [a.filename, Buffer.from(a.content, 'base64').toString()]), [['receipt.txt', 'order 42']]);
  assert.equal(mail.auth?.spf, 'pass');
  // The received event went out too, and acme/eu's endpoint saw nothing.
  await waitFor(() => h.reader.records.find((r) => r.topic === 'email.events' && r.message.value?.toString().includes(mail.id) && r.message.value.toString().includes('"received"')), 15_000, 'the received event');
  assert.equal(eu.requests.length, 0);
});
