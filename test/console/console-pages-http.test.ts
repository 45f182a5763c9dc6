/**
 * The console's webhooks and pools-and-sites pages and the admin tenant switch reaching
 * Messages, over HTTP on a real ingest (embedded broker, the `/v1/webhooks` pieces, the
 * console's own read of email.events) and a real analytics read API (its key check and tenant
 * override; a ClickHouse client that records the tenant each query is scoped to):
 * - Messages: an admin who switched to `acme/eu` reads `acme/eu`'s messages; `acme` reads its own.
 * - Webhooks: created (secret shown once), tenant isolation (`acme` / `acme/eu`), scopes, the
 *   SSRF guard, edit, rotate, the delivery log from email.webhooks.deliveries, replay, delete.
 * - Pools and sites: pauses, site limits and deferral rates from ops events other processes
 *   publish on email.events; admin only for sources, pools and sites; a tenant sees its own
 *   paused sending domains; resume publishes the dispatcher's `resumed` event.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import pino from 'pino';
import type { Producer } from 'kafkajs';
import type { ClickHouseClient } from '@clickhouse/client';
import { IngestHarness, KEYS } from '../ingest/ingest-harness.js';
import { waitFor } from '../helpers/broker.js';
import { ApiKeyStore, hashApiKey } from '../../shared/http/api-keys.js';
import { registerReadApi } from '../../services/analytics/read-api/read-api.js';
import { readApiAuthenticate } from '../../services/analytics/main.js';
import type { IngestHandle } from '../../services/ingest/main.js';
import { EmailEventContract, type EmailEvent } from '../../shared/contracts/email-event.js';
import { DeliveryAttemptContract, WEBHOOK_DELIVERIES_TOPIC, type DeliveryAttempt } from '../../shared/webhooks/delivery-job.js';
import type { EventInput } from '../../shared/events.js';
import { Topics } from '../../shared/topics.js';
import { senderPausedEvent, siteLimitsEvent, sourcePausedEvent } from '../../services/dispatcher/shaping/ops-events.js';
import { InjectClient } from './inject-client.js';

const ADMIN_KEY = 'pl_test_console_pages_admin_0123456789';
const READER_KEY = 'pl_test_console_pages_reader_012345678';
let h: IngestHarness;
let ingest: IngestHandle;
let readApi: FastifyInstance;
let producer: Producer;
/** The tenant of every query the read API ran. */
const queried: string[] = [];

before(async () => {
  h = await IngestHarness.start();
  const bootstrap = [
    ...Object.entries(KEYS).map(([tenant, key]) => ({ tenant, keyHash: hashApiKey(key) })),
    { tenant: 'ops', keyHash: hashApiKey(ADMIN_KEY), scopes: ['admin', 'read', 'send'] as Array<'admin' | 'read' | 'send'> },
    { tenant: 'acme', keyHash: hashApiKey(READER_KEY), scopes: ['read'] as Array<'read'> },
  ];
  // The analytics read API with its own key check over the same keys, as services/analytics/main.ts builds it.
  const client = {
    query: async (q: { query_params?: Record<string, unknown> }) => {
      queried.push(String(q.query_params?.tenant));
      throw Object.assign(new Error('no ClickHouse here'), { code: 'ECONNREFUSED' });
    },
  } as unknown as ClickHouseClient;
  readApi = Fastify();
  registerReadApi(readApi, { client, authenticate: readApiAuthenticate(new ApiKeyStore(bootstrap), pino({ level: 'silent' })) });
  const readApiUrl = await readApi.listen({ host: '127.0.0.1', port: 0 });
  ingest = await h.ingest({ 'ingest.apiKeys': bootstrap, 'ingest.readApiUrl': readApiUrl });
  producer = h.kafka.producer();
  await producer.connect();
  await h.collect();
});
after(async () => {
  await producer?.disconnect();
  await h?.stop();
  await readApi?.close();
});

const signedIn = async (key: string): Promise<InjectClient> => {
  const c = new InjectClient(ingest.app);
  const res = await c.signIn(key);
  assert.equal(res.statusCode, 303, res.body);
  return c;
};

const publish = async (input: EventInput, atMs = Date.now()): Promise<void> => {
  const event = { schemaVersion: 1, eventId: randomUUID(), at: new Date(atMs).toISOString(), stage: 'dispatcher', ...input } as EmailEvent;
  await producer.send({ topic: Topics.events, messages: [{ key: event.messageId, value: EmailEventContract.encode(event) }] });
};

test('messages: an admin who switched tenant reads that tenant\'s messages; other keys read their own', async () => {
  const acme = await signedIn(KEYS.acme);
  const admin = await signedIn(ADMIN_KEY);
  queried.length = 0;
  const own = await acme.get('/console/messages?recipient=a%40example.com');
  assert.equal(own.statusCode, 200);
  assert.match(own.body, /analytics store unavailable/, 'the read API answered (its store is absent)');
  await admin.get('/console/messages');
  await admin.post('/console/tenant', { tenant: 'acme/eu' });
  const switched = await admin.get('/console/messages');
  assert.match(switched.body, /<h1>Messages <small>tenant acme\/eu<\/small>/);
  const timeline = await admin.get('/console/messages/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b');
  assert.equal(timeline.statusCode, 502, 'the store is absent; the tenant was accepted');
  assert.deepEqual(queried, ['acme', 'ops', 'acme/eu', 'acme/eu']);
});

test('webhooks: created with its secret shown once, seen only by its tenant, edited, rotated, logged, replayed and deleted', async () => {
  const acme = await signedIn(KEYS.acme);
  const eu = await signedIn(KEYS['acme/eu']);
  const reader = await signedIn(READER_KEY);
  await acme.get('/console/webhooks');
  const privateUrl = await acme.post('/console/webhooks', { url: 'https://127.0.0.1/hook' });
  assert.equal(privateUrl.statusCode, 400);
  assert.match(privateUrl.body, /url: /, 'the SSRF guard says why');
  const created = await acme.post('/console/webhooks', { url: 'https://93.184.216.34/hooks/postline', description: 'CRM', eventTypes: ['email.sent', 'email.bounced'], enabled: 'on' });
  assert.equal(created.statusCode, 201, created.body);
  const secret = /id="created-secret" readonly value="(whsec_[^"]+)"/.exec(created.body)?.[1];
  assert.ok(secret, 'the secret is on the answer page');
  const id = /href="\/console\/webhooks\/([^"]+)">https:\/\/93\.184\.216\.34/.exec(created.body)?.[1];
  assert.ok(id);
  const api = await ingest.app.inject({ method: 'GET', url: `/v1/webhooks/${id}`, headers: { authorization: `Bearer ${KEYS.acme}` } });
  assert.deepEqual(api.json().eventTypes, ['email.sent', 'email.bounced'], 'the API sees what the console created');

  const list = await acme.get('/console/webhooks');
  assert.match(list.body, /email\.sent, email\.bounced/);
  assert.match(list.body, /no deliveries yet/);
  assert.ok(!list.body.includes(secret), 'never shown again');
  assert.doesNotMatch((await eu.get('/console/webhooks')).body, /93\.184\.216\.34/, 'acme/eu does not see acme\'s endpoint');
  assert.equal((await eu.get(`/console/webhooks/${id}`)).statusCode, 404);
  await eu.get('/console/webhooks');
  assert.equal((await eu.post(`/console/webhooks/${id}/delete`)).statusCode, 404, 'nor delete it');
  assert.equal((await reader.get(`/console/webhooks/${id}`)).statusCode, 200, 'a read key sees it');
  assert.equal((await reader.post(`/console/webhooks/${id}/rotate`)).statusCode, 403, 'only send changes it');

  // The webhooks service's attempts reach the delivery log through email.webhooks.deliveries.
  const attempt: DeliveryAttempt = { endpointId: id, tenant: 'acme', at: new Date().toISOString(), webhookId: 'msg_1', type: 'email.sent', messageId: 'm-123', attempt: 2, outcome: 'failed', status: 503, latencyMs: 87, nextAttemptAt: new Date(Date.now() + 60_000).toISOString() };
  await producer.send({ topic: WEBHOOK_DELIVERIES_TOPIC, messages: [{ key: id, value: DeliveryAttemptContract.encode(attempt) }] });
  const page = await waitFor(async () => {
    const p = await acme.get(`/console/webhooks/${id}`);
    return p.body.includes('m-123') ? p : undefined;
  }, 10_000, 'the attempt in the delivery log');
  assert.match(page.body, /<td class="o-failed">failed/);
  assert.match(page.body, /<td>503<\/td><td>87 ms<\/td>/);
  assert.match(page.body, /failing: answered 503; 1 of the last 1 attempts failed/);
  assert.match((await acme.get('/console/webhooks')).body, /failing: answered 503/);

  const edited = await acme.post(`/console/webhooks/${id}`, { url: 'https://93.184.216.34/hooks/v2', description: 'CRM v2', eventTypes: 'email.sent' });
  assert.equal(edited.statusCode, 303);
  const afterEdit = (await ingest.app.inject({ method: 'GET', url: `/v1/webhooks/${id}`, headers: { authorization: `Bearer ${KEYS.acme}` } })).json();
  assert.deepEqual([afterEdit.url, afterEdit.eventTypes, afterEdit.enabled, afterEdit.disabledReason], ['https://93.184.216.34/hooks/v2', ['email.sent'], false, 'api'], 'unticked "Enabled" disables it');
  assert.match((await acme.get(`/console/webhooks/${id}`)).body, /<dd class="wh-disabled">disabled/);

  const rotated = await acme.post(`/console/webhooks/${id}/rotate`);
  assert.equal(rotated.statusCode, 200);
  const newSecret = /id="rotated-secret" readonly value="(whsec_[^"]+)"/.exec(rotated.body)?.[1];
  assert.ok(newSecret && newSecret !== secret);
  assert.match(rotated.body, /The previous secret keeps signing too until/);

  const badRange = await acme.post(`/console/webhooks/${id}/replay`, { from: '2026-12-03T19:00', to: '2026-12-03T18:00' });
  assert.equal(badRange.statusCode, 400);
  const replayed = await acme.post(`/console/webhooks/${id}/replay`, { from: new Date(Date.now() - 60_000).toISOString().slice(0, 16) });
  assert.equal(replayed.statusCode, 202, replayed.body);
  assert.match(replayed.body, /Replay queued: \d+ events from/);

  await acme.get('/console/webhooks');
  const deleted = await acme.post(`/console/webhooks/${id}/delete`);
  assert.match(deleted.body, /Webhook endpoint https:\/\/93\.184\.216\.34\/hooks\/v2 deleted\./);
  assert.ok(!deleted.body.includes(`href="/console/webhooks/${id}"`), 'no longer listed');
  assert.equal((await ingest.app.inject({ method: 'GET', url: `/v1/webhooks/${id}`, headers: { authorization: `Bearer ${KEYS.acme}` } })).statusCode, 404);
});

test('pools and sites: what the dispatchers announce, admin only for the installation, resume through email.events', async () => {
  const now = Date.now();
  await publish(sourcePausedEvent({ target: '192.0.2.10', kind: 'source', reason: 'complaint-rate', rate: 0.004, sample: 1200, until: now + 3_600_000 }));
  await publish(sourcePausedEvent({ target: 'bulk', kind: 'pool', reason: 'bounce-rate', rate: 0.07, sample: 300, until: now + 600_000 }));
  await publish(siteLimitsEvent({ source: '192.0.2.11', site: 'yahoo', to: { factor: 0.25, maxConnections: 1, perSecond: 2 }, reason: 'throttled' }));
  await publish(senderPausedEvent({ tenant: 'acme', domain: 'news.acme.com', reason: 'bounce-rate', rate: 0.06, sample: 2000, until: now + 3_600_000 }));
  await publish(senderPausedEvent({ tenant: 'acme/eu', domain: 'eu.acme.com', reason: 'complaint-rate', rate: 0.005, sample: 1500, until: now + 3_600_000 }));
  const outcome = (type: 'sent' | 'deferred', reason?: string): EventInput => ({ type, messageId: randomUUID(), tenant: 'acme', domain: 'yahoo.com', site: 'yahoo', source: '192.0.2.11', ...(reason ? { reason } : {}) });
  await publish(outcome('sent'));
  await publish(outcome('deferred', 'SMTP_BREAKER_OPEN: circuit breaker for mta5.am0.yahoodns.net:25 is open'));

  const admin = await signedIn(ADMIN_KEY);
  const page = await waitFor(async () => {
    const p = await admin.get('/console/health');
    return p.body.includes('eu.acme.com') && p.body.includes('1 deferrals') ? p : undefined;
  }, 10_000, 'the ops events on the page');
  assert.match(page.body, /source <code>192\.0\.2\.10<\/code><\/th><td>complaint-rate<\/td><td>0\.40 %/);
  assert.match(page.body, /pool <code>bulk<\/code><\/th><td>bounce-rate<\/td><td>7\.0 %/);
  assert.match(page.body, /<th scope="row">yahoo<\/th><td><code>192\.0\.2\.11<\/code><\/td><td class="s-deferred">25\.0 % of the rule<\/td><td>1<\/td><td>2<\/td>/);
  assert.match(page.body, /<th scope="row">yahoo<\/th><td>1<\/td><td>1<\/td><td>0<\/td><td class="s-deferred">50\.0 %<\/td><td>1 deferrals, last/);
  assert.match(page.body, /news\.acme\.com/);

  const acme = await signedIn(KEYS.acme);
  const tenantView = await acme.get('/console/health');
  assert.equal(tenantView.statusCode, 200);
  assert.match(tenantView.body, /news\.acme\.com/, 'its own paused sending domain');
  assert.doesNotMatch(tenantView.body, /eu\.acme\.com|192\.0\.2\.10|yahoo/, 'no other tenant\'s domain, no sources, pools or sites');
  assert.match(tenantView.body, /an admin key sees them/);
  assert.doesNotMatch(tenantView.body, />Resume</);
  assert.equal((await acme.post('/console/health/resume', { scope: 'source', target: '192.0.2.10' })).statusCode, 403);

  await admin.get('/console/health');
  const notPaused = await admin.post('/console/health/resume', { scope: 'pool', target: 'nope' });
  assert.equal(notPaused.statusCode, 404);
  await admin.get('/console/health');
  const resumed = await admin.post('/console/health/resume', { scope: 'source', target: '192.0.2.10' });
  assert.equal(resumed.statusCode, 200);
  assert.match(resumed.body, /192\.0\.2\.10 resumed/);
  assert.doesNotMatch(resumed.body, /source <code>192\.0\.2\.10<\/code>/);
  // The event every dispatcher replica applies (shaping/ops-events.ts pauseNoticeOf).
  const event = await waitFor(() => h.records.get(Topics.events)?.find((r) => r.value.type === 'resumed' && (r.value.ops as { target?: string })?.target === '192.0.2.10'), 10_000, 'the resumed event');
  assert.deepEqual([event.value.tenant, event.value.reason, event.value.ops], ['', 'command', { scope: 'source', target: '192.0.2.10' }]);
  await admin.get('/console/health');
  const sender = await admin.post('/console/health/resume', { scope: 'sender', target: 'eu.acme.com', tenant: 'acme/eu' });
  assert.match(sender.body, /eu\.acme\.com resumed/);
  const senderEvent = await waitFor(() => h.records.get(Topics.events)?.find((r) => r.value.type === 'resumed' && (r.value.ops as { scope?: string })?.scope === 'sender'), 10_000, 'the sender resumed event');
  assert.equal(senderEvent.value.tenant, 'acme/eu');
  assert.match((await acme.get('/console/health')).body, /news\.acme\.com/, 'acme\'s pause holds');
});

test('keys page: an admin creates a tenant and adds and removes sender domains, which the send API then applies', async () => {
  const admin = await signedIn(ADMIN_KEY);
  const eu = await signedIn(KEYS['acme/eu']);
  await admin.get('/console/keys');
  const created = await admin.post('/console/keys/tenants', { name: 'acme/us' });
  assert.equal(created.statusCode, 201);
  assert.match(created.body, /Tenant acme\/us created/);
  assert.match(created.body, /<option value="acme\/us">/, 'it can be switched to and given keys');
  assert.equal((await admin.post('/console/keys/tenants', { name: 'acme/us' })).statusCode, 409);
  assert.equal((await admin.post('/console/keys/domains', { tenant: 'nobody', domain: 'x.example' })).statusCode, 404);
  assert.equal((await admin.post('/console/keys/domains', { tenant: 'globex', domain: 'not a domain' })).statusCode, 400);
  const added = await admin.post('/console/keys/domains', { tenant: 'globex', domain: 'Mail.Globex.example' });
  assert.equal(added.statusCode, 201);
  assert.match(added.body, /<th scope="row">mail\.globex\.example<\/th><td>globex<\/td>/);
  await eu.get('/console/keys');
  assert.equal((await eu.post('/console/keys/domains', { tenant: 'acme/eu', domain: 'eu.example' })).statusCode, 403, 'only an admin adds domains');
  assert.equal((await eu.post('/console/keys/tenants', { name: 'mine' })).statusCode, 403, 'or creates tenants');
  assert.doesNotMatch((await eu.get('/console/keys')).body, /globex\.example/, 'another tenant\'s domains are not shown');

  const send = (from: string) => ingest.app.inject({ method: 'POST', url: '/v1/emails', headers: { authorization: `Bearer ${KEYS.globex}` }, payload: { from, to: ['rcpt@example.org'], subject: 'x', text: 'x' } });
  assert.equal((await send('a@other.example')).statusCode, 400, 'globex may now send only from its domain');
  assert.equal((await send('a@mail.globex.example')).statusCode, 202);
  await admin.get('/console/keys');
  const removed = await admin.post('/console/keys/domains/remove', { tenant: 'globex', domain: 'mail.globex.example' });
  assert.match(removed.body, /mail\.globex\.example is no longer a sender domain of globex/);
  await waitFor(async () => (await send('a@other.example')).statusCode === 202, 5000, 'any domain again');
});
