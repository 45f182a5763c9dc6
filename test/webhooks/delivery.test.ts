/**
 * The webhooks service end to end: events on email.events and inbound mail on email.inbound
 * reach real HTTP receivers on loopback, signed (verified with the standardwebhooks package),
 * filtered per endpoint, tenant by tenant (`acme` vs `acme/eu`); failures are retried on the
 * webhook tiers without a later event of the same message overtaking; a hanging endpoint does
 * not hold up another's deliveries; an endpoint failing too long is disabled with a `disabled`
 * event; the delivery log and replay.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Webhook } from 'standardwebhooks';
import pino from 'pino';
import { Topics } from '../../shared/topics.js';
import { INBOUND_MAIL_VERSION, InboundMailContract, type InboundMail } from '../../shared/contracts/inbound-mail.js';
import { EmailEventContract } from '../../shared/contracts/email-event.js';
import { openDeliveryLog } from '../../shared/webhooks/delivery-log.js';
import { replayEvents } from '../../shared/webhooks/replay.js';
import { waitFor } from '../helpers/broker.js';
import { WebhooksHarness } from './webhooks-harness.js';

let h: WebhooksHarness;
before(async () => {
  h = await WebhooksHarness.start({ 'webhooks.disableAfterMs': 3000, 'webhooks.timeoutMs': 1500 });
});
after(() => h.stop());

const dataOf = (r: { json: { data: Record<string, unknown> } }) => r.json.data;

test('signed deliveries, filtered per endpoint and tenant; inbound mail as inbound.received; the delivery log', async () => {
  const acmeAll = await h.receiver();
  const acmeBounces = await h.receiver();
  const eu = await h.receiver();
  const epAll = await h.endpoint('acme', { url: acmeAll.url });
  const epBounces = await h.endpoint('acme', { url: acmeBounces.url, eventTypes: ['email.bounced', 'inbound.received'] });
  const epEu = await h.endpoint('acme/eu', { url: eu.url });

  const sent = h.event('acme', 'sent');
  const bounced = h.event('acme', 'bounced', { messageId: sent.messageId });
  const euSent = h.event('acme/eu', 'sent');
  await h.produce(sent, bounced, euSent, h.event('globex', 'sent'));
  const mail: InboundMail = {
    schemaVersion: INBOUND_MAIL_VERSION, id: 'in-1', tenant: 'acme', domain: 'in.acme.test', receivedAt: new Date().toISOString(),
    envelope: { from: 'a@example.org', to: ['support@in.acme.test'] }, remote: { ip: '192.0.2.1' }, headers: [['Subject', 'Hi']], subject: 'Hi', text: 'hello', attachments: [], size: 100,
  };
  await h.producer.send({ topic: Topics.inbound, acks: -1, messages: [{ key: mail.id, value: InboundMailContract.encode(mail) }] });

  await waitFor(() => acmeAll.requests.length >= 2 && acmeBounces.requests.length >= 2 && eu.requests.length >= 1, 20_000, 'deliveries');
  assert.deepEqual(acmeAll.requests.map((r) => r.json.type), ['email.sent', 'email.bounced'], 'in order; inbound only when named');
  assert.deepEqual(acmeBounces.requests.map((r) => r.json.type).sort(), ['email.bounced', 'inbound.received']);
  assert.deepEqual(eu.requests.map((r) => dataOf(r).eventId), [euSent.eventId], 'acme/eu gets its own events only');
  assert.equal(acmeAll.requests.some((r) => dataOf(r).tenant !== 'acme'), false);

  // Every request verifies with the endpoint's secret (Standard Webhooks), and only with it.
  const first = acmeAll.requests[0];
  assert.equal(first.headers['webhook-id'], sent.eventId);
  const verified = new Webhook(epAll.secrets[0].secret).verify(first.body, first.headers as Record<string, string>) as { data: { eventId: string } };
  assert.equal(verified.data.eventId, sent.eventId);
  assert.throws(() => new Webhook(epEu.secrets[0].secret).verify(first.body, first.headers as Record<string, string>));
  const inbound = acmeBounces.requests.find((r) => r.json.type === 'inbound.received')!;
  assert.equal(dataOf(inbound).id, 'in-1');
  assert.equal(inbound.headers['webhook-id'], 'in-1');
  new Webhook(epBounces.secrets[0].secret).verify(inbound.body, inbound.headers as Record<string, string>);

  // The delivery log as the API reads it.
  const log = await openDeliveryLog({ kafka: h.kafka, logger: pino({ level: 'silent' }), perEndpoint: 10 });
  try {
    // Log records are keyed by endpoint, so each endpoint's land on its own partition and are read independently: wait for both.
    const entries = await waitFor(() => (log.log.recent(epAll.id).length >= 2 && log.log.recent(epEu.id).length >= 1 ? log.log.recent(epAll.id) : undefined), 15_000, 'log entries');
    assert.deepEqual(entries.map((e) => [e.type, e.outcome, e.status, e.attempt]), [['email.bounced', 'delivered', 200, 1], ['email.sent', 'delivered', 200, 1]]);
    assert.ok(entries.every((e) => typeof e.latencyMs === 'number' && e.tenant === 'acme'));
    assert.equal(log.log.recent(epEu.id).length, 1);
  } finally {
    await log.stop();
  }

  // Rotation: both secrets sign during the overlap.
  const rotated = (await h.book.rotate('acme', epAll.id, 60_000))!;
  const later = h.event('acme', 'opened');
  await h.produce(later);
  const got = await waitFor(() => acmeAll.requests.find((r) => dataOf(r).eventId === later.eventId), 15_000, 'delivery after rotation');
  assert.equal((got.headers['webhook-signature'] as string).split(' ').length, 2);
  new Webhook(rotated.secrets[0].secret).verify(got.body, got.headers as Record<string, string>);
  new Webhook(epAll.secrets[0].secret).verify(got.body, got.headers as Record<string, string>);
});

test('a failing delivery is retried on the 5 s tier and a later event of the same message does not overtake it; a hanging endpoint holds up no other', async () => {
  let failFirst = 2;
  const flaky = await h.receiver(() => (failFirst-- > 0 ? 500 : 200));
  const hanging = await h.receiver(() => 'hang');
  const healthy = await h.receiver();
  await h.endpoint('tenant-flaky', { url: flaky.url });
  await h.endpoint('tenant-hang', { url: hanging.url });
  await h.endpoint('tenant-ok', { url: healthy.url });

  const a = h.event('tenant-flaky', 'sent');
  const b = h.event('tenant-flaky', 'opened', { messageId: a.messageId });
  const c = h.event('tenant-flaky', 'sent');
  await h.produce(a);
  await waitFor(() => flaky.requests.length >= 1, 15_000, 'the first attempt');
  await h.produce(b, c);
  // Hanging endpoint: many events; the healthy tenant's events still arrive promptly.
  await h.produce(...Array.from({ length: 40 }, () => h.event('tenant-hang', 'sent')));
  const started = Date.now();
  const okEvents = Array.from({ length: 20 }, () => h.event('tenant-ok', 'sent'));
  await h.produce(...okEvents);
  await waitFor(() => healthy.requests.length >= 20, 15_000, 'the healthy endpoint\'s deliveries');
  assert.ok(Date.now() - started < 5000, `healthy deliveries took ${Date.now() - started} ms behind a hanging endpoint`);

  await waitFor(() => flaky.requests.filter((r) => r.status === 200 && dataOf(r).messageId === a.messageId).length >= 2, 40_000, 'a and b delivered');
  const okOrder = flaky.requests.filter((r) => r.status === 200 && dataOf(r).messageId === a.messageId).map((r) => dataOf(r).eventId);
  assert.deepEqual(okOrder, [a.eventId, b.eventId], 'b never overtakes a');
  const firstB = flaky.requests.findIndex((r) => dataOf(r).eventId === b.eventId);
  const aDelivered = flaky.requests.findIndex((r) => dataOf(r).eventId === a.eventId && r.status === 200);
  assert.ok(firstB > aDelivered, 'b is not even attempted before a is delivered');
  const aAttempts = flaky.requests.filter((r) => dataOf(r).eventId === a.eventId);
  assert.ok(aAttempts.length >= 2, 'a was retried');
  assert.ok(aAttempts[1].at - aAttempts[0].at >= 4500, 'after the 5 s tier');
  assert.equal(new Set(aAttempts.map((r) => r.headers['webhook-id'])).size, 1, 'the same webhook-id at every attempt');
  // c (another message) was not held by a's line.
  assert.ok(flaky.requests.some((r) => dataOf(r).eventId === c.eventId));
});

test('an endpoint failing longer than disableAfterMs is disabled with a disabled event; replay delivers a time range again', async () => {
  const dead = await h.receiver(() => 503);
  const ep = await h.endpoint('tenant-dead', { url: dead.url });
  await h.produce(h.event('tenant-dead', 'sent'));
  await waitFor(() => h.book.byId(ep.id)?.enabled === false, 30_000, 'the endpoint disabled');
  assert.equal(h.book.byId(ep.id)!.disabledReason, 'failing');
  const events: Array<{ type: string; tenant: string; ops?: { scope: string; target: string } }> = [];
  const consumer = h.kafka.consumer({ groupId: `t-${Date.now()}` });
  await consumer.connect();
  await consumer.subscribe({ topic: Topics.events, fromBeginning: true });
  await consumer.run({ eachMessage: async ({ message }) => void events.push(EmailEventContract.decode(message.value)) });
  try {
    const disabled = await waitFor(() => events.find((e) => e.type === 'disabled' && e.ops?.target === ep.id), 15_000, 'the disabled event');
    assert.equal(disabled.tenant, 'tenant-dead');
    assert.equal(disabled.ops?.scope, 'webhook');
  } finally {
    await consumer.disconnect();
  }
  // Disabled: no more attempts.
  const attempts = dead.requests.length;
  await h.produce(h.event('tenant-dead', 'sent'));
  const marker = h.event('tenant-ok-2', 'sent');
  const rcv = await h.receiver();
  const epOk = await h.endpoint('tenant-ok-2', { url: rcv.url });
  marker.at = new Date().toISOString();
  await h.produce(marker);
  await waitFor(() => rcv.requests.length >= 1, 15_000, 'a later delivery elsewhere');
  assert.equal(dead.requests.length, attempts, 'a disabled endpoint gets nothing');

  // Replay: the range holding the marker event, delivered again with the same webhook-id.
  const from = Date.parse(marker.at) - 1000;
  const result = await replayEvents({ kafka: h.kafka, producer: h.batching, endpoint: epOk, fromMs: from, toMs: Date.now() + 1000, maxRecords: 10_000 });
  assert.equal(result.queued, 1);
  assert.equal(result.complete, true);
  await waitFor(() => rcv.requests.length >= 2, 15_000, 'the replayed delivery');
  assert.equal(rcv.requests[1].headers['webhook-id'], marker.eventId);

  // The log (batched records, as the API reads them) has both attempts, the replayed one marked.
  const log = await openDeliveryLog({ kafka: h.kafka, logger: pino({ level: 'silent' }), perEndpoint: 10 });
  try {
    const entries = await waitFor(() => (log.log.recent(epOk.id).length >= 2 ? log.log.recent(epOk.id) : undefined), 15_000, 'log entries of the replay');
    assert.deepEqual(entries.map((e) => [e.webhookId, e.outcome, e.replay ?? false]), [[marker.eventId, 'delivered', true], [marker.eventId, 'delivered', false]]);
  } finally {
    await log.stop();
  }
});
