/**
 * `/v1/webhooks` on the send API against the embedded broker: create (secret shown once), list,
 * get, patch, rotate (two secrets signing for the overlap), delete; URLs through the SSRF guard;
 * tenant isolation between `acme` and `acme/eu`; a second replica reads the same endpoints.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { IngestHarness, auth } from '../ingest/ingest-harness.js';
import { Topics } from '../../shared/topics.js';
import { BatchingProducer } from '../../shared/kafka/batching-producer.js';
import { openEndpointBook } from '../../shared/webhooks/endpoint-book.js';
import { waitFor } from '../helpers/broker.js';

let h: IngestHarness;
before(async () => {
  h = await IngestHarness.start();
});
after(() => h.stop());

const allowLoopback = { 'webhooks.allowPrivate': ['127.0.0.1'], 'webhooks.allowHttp': true };

test('create, list, get, patch, rotate, delete; acme and acme/eu apart', async () => {
  const { app } = await h.ingest(allowLoopback);
  const created = await app.inject({ method: 'POST', url: '/v1/webhooks', headers: auth('acme'), payload: { url: 'http://127.0.0.1:9/hook', description: 'ops', eventTypes: ['email.sent', 'inbound.received'] } });
  assert.equal(created.statusCode, 201, created.body);
  const ep = created.json();
  assert.match(ep.secret, /^whsec_/);
  assert.deepEqual(ep.eventTypes, ['email.sent', 'inbound.received']);
  assert.equal(ep.enabled, true);

  const got = await app.inject({ method: 'GET', url: `/v1/webhooks/${ep.id}`, headers: auth('acme') });
  assert.equal(got.statusCode, 200);
  assert.equal(got.json().secret, undefined, 'the secret is shown once');
  assert.equal(JSON.stringify(got.json()).includes('whsec_'), false);

  // acme/eu (a name extending acme's) neither sees nor changes acme's endpoint.
  const eu = await app.inject({ method: 'POST', url: '/v1/webhooks', headers: auth('acme/eu'), payload: { url: 'http://127.0.0.1:9/eu' } });
  assert.equal(eu.statusCode, 201);
  for (const [method, url] of [['GET', `/v1/webhooks/${ep.id}`], ['PATCH', `/v1/webhooks/${ep.id}`], ['DELETE', `/v1/webhooks/${ep.id}`], ['POST', `/v1/webhooks/${ep.id}/rotate`], ['GET', `/v1/webhooks/${ep.id}/deliveries`]] as const) {
    const res = await app.inject({ method, url, headers: auth('acme/eu'), ...(method === 'PATCH' ? { payload: { enabled: false } } : {}) });
    assert.equal(res.statusCode, 404, `${method} ${url} by acme/eu`);
  }
  const acmeList = await app.inject({ method: 'GET', url: '/v1/webhooks', headers: auth('acme') });
  assert.deepEqual(acmeList.json().items.map((e: { id: string }) => e.id), [ep.id]);
  const euList = await app.inject({ method: 'GET', url: '/v1/webhooks', headers: auth('acme/eu') });
  assert.deepEqual(euList.json().items.map((e: { id: string }) => e.id), [eu.json().id]);

  const patched = await app.inject({ method: 'PATCH', url: `/v1/webhooks/${ep.id}`, headers: auth('acme'), payload: { enabled: false, eventTypes: [] } });
  assert.equal(patched.statusCode, 200, patched.body);
  assert.equal(patched.json().enabled, false);
  assert.equal(patched.json().disabledReason, 'api');
  const reenabled = await app.inject({ method: 'PATCH', url: `/v1/webhooks/${ep.id}`, headers: auth('acme'), payload: { enabled: true } });
  assert.equal(reenabled.json().enabled, true);
  assert.equal(reenabled.json().disabledReason, undefined);

  const rotated = await app.inject({ method: 'POST', url: `/v1/webhooks/${ep.id}/rotate`, headers: auth('acme') });
  assert.equal(rotated.statusCode, 200);
  assert.match(rotated.json().secret, /^whsec_/);
  assert.notEqual(rotated.json().secret, ep.secret);
  assert.equal(rotated.json().secrets.length, 2);
  assert.ok(Date.parse(rotated.json().secrets[1].expiresAt) > Date.now() + 23 * 3600_000, 'the old secret signs for the overlap');

  // A second replica reads the same endpoints from the topic.
  const { app: other } = await h.ingest(allowLoopback);
  const again = await other.inject({ method: 'GET', url: `/v1/webhooks/${ep.id}`, headers: auth('acme') });
  assert.equal(again.json().secrets.length, 2);

  const del = await app.inject({ method: 'DELETE', url: `/v1/webhooks/${ep.id}`, headers: auth('acme') });
  assert.equal(del.statusCode, 204);
  assert.equal((await app.inject({ method: 'GET', url: `/v1/webhooks/${ep.id}`, headers: auth('acme') })).statusCode, 404);
  assert.equal((await other.inject({ method: 'GET', url: '/v1/webhooks', headers: auth('acme') })).json().items.length, 0);
});

test('the SSRF guard refuses private, loopback and link-local URLs unless allowed, and http unless allowed', async () => {
  const { app } = await h.ingest();
  for (const url of ['https://127.0.0.1/x', 'https://10.0.0.1/x', 'https://169.254.169.254/latest', 'https://[::1]/x', 'https://[::ffff:192.168.0.1]/x', 'https://100.64.1.1/x', 'https://localhost/x']) {
    const res = await app.inject({ method: 'POST', url: '/v1/webhooks', headers: auth('acme'), payload: { url } });
    assert.equal(res.statusCode, 400, url);
    assert.equal(res.json().error.fields[0].field, 'url');
  }
  const http = await app.inject({ method: 'POST', url: '/v1/webhooks', headers: auth('acme'), payload: { url: 'http://93.184.216.34/x' } });
  assert.equal(http.statusCode, 400);
  assert.match(http.json().error.fields[0].message, /https/);
  const badType = await app.inject({ method: 'POST', url: '/v1/webhooks', headers: auth('acme'), payload: { url: 'https://93.184.216.34/x', eventTypes: ['email.nope'] } });
  assert.equal(badType.statusCode, 400);
  const { app: allowed } = await h.ingest(allowLoopback);
  const ok = await allowed.inject({ method: 'POST', url: '/v1/webhooks', headers: auth('globex'), payload: { url: 'http://127.0.0.1:1/x' } });
  assert.equal(ok.statusCode, 201, ok.body);
  const patchBad = await allowed.inject({ method: 'PATCH', url: `/v1/webhooks/${ok.json().id}`, headers: auth('globex'), payload: { url: 'http://10.1.1.1/x' } });
  assert.equal(patchBad.statusCode, 400);
});

test('PATCH {enabled:true} switches on an endpoint the service disabled, with an enabled event', async () => {
  const { app } = await h.ingest(allowLoopback);
  await h.collect();
  const created = (await app.inject({ method: 'POST', url: '/v1/webhooks', headers: auth('acme/eu'), payload: { url: 'http://127.0.0.1:9/hook' } })).json();
  // What the webhooks service does when the endpoint failed too long.
  const producer = h.kafka.producer();
  await producer.connect();
  const opened = await openEndpointBook({ kafka: h.kafka, producer: new BatchingProducer(producer), logger: pino({ level: 'silent' }) });
  try {
    assert.ok(await opened.book.disable(created.id, 'failing'));
  } finally {
    await opened.stop();
    await producer.disconnect();
  }
  await waitFor(async () => (await app.inject({ method: 'GET', url: `/v1/webhooks/${created.id}`, headers: auth('acme/eu') })).json().enabled === false || undefined, 10_000, 'the API sees it disabled');
  const res = await app.inject({ method: 'PATCH', url: `/v1/webhooks/${created.id}`, headers: auth('acme/eu'), payload: { enabled: true } });
  assert.equal(res.json().enabled, true);
  const events = await waitFor(() => {
    const found = h.on(Topics.events, '').filter((r) => r.value.type === 'enabled' && (r.value.ops as { target: string }).target === created.id);
    return found.length > 0 ? found : undefined;
  }, 10_000, 'the enabled event');
  assert.equal(events[0].value.tenant, 'acme/eu');
  assert.deepEqual(events[0].value.ops, { scope: 'webhook', target: created.id });
});
