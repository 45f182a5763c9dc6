/**
 * The Deliverer's per-delivery work, against a real receiver on loopback: the delivery log is
 * written as one record per endpoint per window (not one per attempt) and read back by the API's
 * decoder, version-1 records included; a live delivery's body is built once around the record's
 * own JSON (the bytes the consumer read), signed so the `standardwebhooks` package verifies it.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { Webhook } from 'standardwebhooks';
import type { KafkaMessage, Message } from 'kafkajs';
import { loadPostlineConfig } from '../../shared/config.js';
import { SsrfGuard } from '../../shared/http/ssrf-guard.js';
import { Topics } from '../../shared/topics.js';
import { MemoryTable } from './memory-endpoint-table.js';
import { EndpointBook } from '../../shared/webhooks/endpoint-book.js';
import { EMAIL_EVENT_VERSION, EmailEventContract, type EmailEvent } from '../../shared/contracts/email-event.js';
import { DeliveryAttemptContract, WEBHOOK_DELIVERIES_TOPIC, decodeDeliveryLogRecord } from '../../shared/webhooks/delivery-job.js';
import { DeliveryLog } from '../../shared/webhooks/delivery-log.js';
import { Deliverer } from '../../services/webhooks/deliverer.js';
import { WebhookClient } from '../../services/webhooks/webhook-client.js';
import { deliveriesFor, payloadOf } from '../../services/webhooks/record-deliveries.js';
import { startReceiver } from './webhooks-harness.js';

const receiver = await startReceiver();
after(() => receiver.close());
const config = loadPostlineConfig({ env: {}, overrides: { 'webhooks.allowPrivate': ['127.0.0.1'], 'webhooks.allowHttp': true } }).webhooks;
const client = new WebhookClient({ guard: new SsrfGuard({ allow: ['127.0.0.1'], allowHttp: true }), timeoutMs: 5000, connectTimeoutMs: 5000, maxResponseBytes: 1024 });
after(() => client.close());

function rig(logLingerMs: number) {
  const book = new EndpointBook(new MemoryTable());
  const written: Array<{ topic: string; message: Message }> = [];
  const producer = { send: async (topic: string, message: Message) => void written.push({ topic, message }) } as never;
  const deliverer = new Deliverer({ book, client, producer, events: { publish: async () => ({}) as never }, logger: pino({ level: 'silent' }), config, logLingerMs });
  return { book, written, deliverer };
}

function event(tenant: string, i: number): EmailEvent {
  return { schemaVersion: EMAIL_EVENT_VERSION, eventId: randomUUID(), type: 'sent', messageId: `msg-${i}`, tenant, at: new Date().toISOString(), stage: 'test' };
}

test('the delivery log: one record per endpoint for a burst of attempts, read back attempt by attempt', async () => {
  const { book, written, deliverer } = rig(60_000);
  const a = await book.create('acme', { url: receiver.url });
  const b = await book.create('globex', { url: receiver.url });
  const before = receiver.requests.length;
  const list = [...Array.from({ length: 30 }, (_, i) => event('acme', i)), ...Array.from({ length: 5 }, (_, i) => event('globex', i))].map((e) => {
    const p = payloadOf(Topics.events, { key: null, value: EmailEventContract.encode(e) } as KafkaMessage);
    return deliveriesFor(p, book.endpointsOf(e.tenant), new Date())[0];
  });
  await Promise.all(list.map((d) => deliverer.submit(d)));
  assert.equal(receiver.requests.length - before, 35);
  assert.equal(written.length, 0, 'nothing written while the window is open');
  await deliverer.close();

  const logRecords = written.filter((w) => w.topic === WEBHOOK_DELIVERIES_TOPIC);
  assert.deepEqual(logRecords.map((w) => String(w.message.key)).sort(), [a.id, b.id].sort(), 'one record per endpoint');
  const log = new DeliveryLog(100);
  for (const w of logRecords) for (const x of decodeDeliveryLogRecord(w.message.value as Buffer)) log.add(x);
  const acme = log.recent(a.id);
  assert.equal(acme.length, 30);
  assert.ok(acme.every((x) => x.outcome === 'delivered' && x.status === 200 && x.attempt === 1 && x.tenant === 'acme' && typeof x.latencyMs === 'number'));
  assert.equal(acme[0].messageId, 'msg-29', 'newest first');
  assert.equal(log.recent(b.id).length, 5);
});

test('the delivery log: a record written before batching (one attempt) is still read; garbage is refused', () => {
  const one = { endpointId: 'ep_1', tenant: 'acme', at: new Date().toISOString(), webhookId: 'w', type: 'email.sent', messageId: 'm', attempt: 1, outcome: 'delivered' as const, status: 200 };
  assert.deepEqual(decodeDeliveryLogRecord(DeliveryAttemptContract.encode(one)), [one]);
  assert.throws(() => decodeDeliveryLogRecord(Buffer.from('{"attempts":"no"}')), /attempts/);
});

test('a live delivery sends the record\'s own JSON as data, serialized once, and the signature verifies', async () => {
  const { book, deliverer } = rig(10);
  const ep = await book.create('acme', { url: receiver.url });
  const e = event('acme', 1);
  // Another producer's spelling: keys in another order, spaces. The body carries it as it is.
  const raw = `{ "tenant": "acme", "eventId": "${e.eventId}", "schemaVersion": ${EMAIL_EVENT_VERSION}, "type": "sent", "messageId": "m-raw", "at": "${e.at}", "stage": "test" }`;
  const p = payloadOf(Topics.events, { key: null, value: Buffer.from(raw) } as KafkaMessage);
  const before = receiver.requests.length;
  await deliverer.submit(deliveriesFor(p, book.endpointsOf('acme'), new Date())[0]);
  await deliverer.close();
  const got = receiver.requests[before];
  assert.equal(got.body, `{"type":"email.sent","timestamp":"${e.at}","data":${raw}}`);
  const verified = new Webhook(ep.secrets[0].secret).verify(got.body, got.headers as Record<string, string>) as { data: { messageId: string } };
  assert.equal(verified.data.messageId, 'm-raw');
});
