/**
 * `/v1/admin/...` on real ingest replicas over the embedded broker: only admin-scoped keys get
 * in; a key created through one replica works on another, and once revoked through one it is
 * refused by the other within a second; scopes hold on the send routes; sender domains added
 * by API apply to sending at once, per tenant (`acme` and `acme/eu`); no key is ever logged.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import pino from 'pino';
import { Registry } from 'prom-client';
import { IngestHarness, KEYS, auth, email } from '../ingest/ingest-harness.js';
import { hashApiKey } from '../../shared/http/api-keys.js';
import { waitFor } from '../helpers/broker.js';
import type { IngestHandle } from '../../services/ingest/main.js';

const ADMIN_KEY = 'pl_test_admin_key_1357924680';
const adminAuth = { authorization: `Bearer ${ADMIN_KEY}` };
const keys = [
  ...Object.entries(KEYS).map(([tenant, key]) => ({ tenant, keyHash: hashApiKey(key) })),
  { tenant: 'ops', keyHash: hashApiKey(ADMIN_KEY), scopes: ['admin'] },
];

let h: IngestHarness;
let one: IngestHandle;
let two: IngestHandle;
const logLines: string[] = [];
const registry = new Registry();
/** Every key the API handed out in this file. */
const createdKeys: string[] = [];

before(async () => {
  h = await IngestHarness.start();
  const sink = new Writable({
    write(chunk, _enc, done) {
      logLines.push(String(chunk));
      done();
    },
  });
  const logger = pino({ level: 'trace' }, sink);
  const overrides = { 'ingest.apiKeys': keys, 'log.level': 'trace', 'ingest.senderDomains': { globex: ['globex.example'] } };
  one = await h.ingest(overrides, { listen: false, logger, registry });
  two = await h.ingest(overrides, { listen: false, logger });
});
after(async () => h.stop());

const send = (app: IngestHandle, key: string, body: Record<string, unknown> = email()) =>
  app.app.inject({ method: 'POST', url: '/v1/emails', headers: { authorization: `Bearer ${key}` }, payload: body });

test('/v1/admin answers admin-scoped keys only: 401 without a key, 403 for a send+read key', async () => {
  assert.equal((await one.app.inject({ method: 'GET', url: '/v1/admin/tenants' })).statusCode, 401);
  const forbidden = await one.app.inject({ method: 'GET', url: '/v1/admin/tenants', headers: auth('acme') });
  assert.equal(forbidden.statusCode, 403);
  assert.equal(forbidden.json().error.code, 'FORBIDDEN');
  assert.equal((await one.app.inject({ method: 'POST', url: '/v1/admin/keys', headers: auth('acme'), payload: { tenant: 'acme', name: 'x' } })).statusCode, 403);
  const ok = await one.app.inject({ method: 'GET', url: '/v1/admin/tenants', headers: adminAuth });
  assert.equal(ok.statusCode, 200);
  assert.deepEqual(ok.json().items.map((t: { name: string; source: string }) => `${t.name}:${t.source}`), ['acme:config', 'acme/eu:config', 'globex:config', 'ops:config']);
  // The admin-only key cannot send.
  assert.equal((await send(one, ADMIN_KEY)).statusCode, 403);
});

test('tenants are created by API, once; listed on every replica', async () => {
  const created = await one.app.inject({ method: 'POST', url: '/v1/admin/tenants', headers: adminAuth, payload: { name: 'initech/eu' } });
  assert.equal(created.statusCode, 201);
  assert.equal((await one.app.inject({ method: 'POST', url: '/v1/admin/tenants', headers: adminAuth, payload: { name: 'initech/eu' } })).statusCode, 409);
  assert.equal((await one.app.inject({ method: 'POST', url: '/v1/admin/tenants', headers: adminAuth, payload: { name: 'bad\u0000' } })).statusCode, 400);
  await waitFor(async () => (await two.app.inject({ method: 'GET', url: '/v1/admin/tenants', headers: adminAuth })).json().items.some((t: { name: string; source: string }) => t.name === 'initech/eu' && t.source === 'admin'), 1000, 'the tenant on replica two');
  const unknown = await one.app.inject({ method: 'POST', url: '/v1/admin/keys', headers: adminAuth, payload: { tenant: 'initech', name: 'x' } });
  assert.equal(unknown.statusCode, 404, 'a key needs an existing tenant: initech/eu is not initech');
});

test('a key is shown once, works on the other replica within 1 s, and is refused there within 1 s of its revocation', async () => {
  const created = await one.app.inject({ method: 'POST', url: '/v1/admin/keys', headers: adminAuth, payload: { tenant: 'initech/eu', name: 'billing', scopes: ['send'] } });
  assert.equal(created.statusCode, 201);
  assert.equal(created.headers['cache-control'], 'no-store');
  const { key, id, tenant, scopes, createdAt } = created.json();
  createdKeys.push(key);
  assert.equal(tenant, 'initech/eu');
  assert.deepEqual(scopes, ['send']);
  assert.ok(createdAt);
  const t0 = Date.now();
  await waitFor(async () => (await send(two, key)).statusCode === 202, 1000, 'the new key to work on replica two');
  const seenMs = Date.now() - t0;
  const listed = await two.app.inject({ method: 'GET', url: `/v1/admin/keys?tenant=${encodeURIComponent('initech/eu')}`, headers: adminAuth });
  assert.deepEqual(listed.json().items.map((k: { id: string }) => k.id), [id]);
  assert.ok(!listed.body.includes(key), 'a listing never carries the key');
  assert.equal(listed.json().items[0].key, undefined);
  // Scopes: a send-only key reads nothing.
  assert.equal((await two.app.inject({ method: 'GET', url: '/v1/templates', headers: { authorization: `Bearer ${key}` } })).statusCode, 403);

  const revoked = await one.app.inject({ method: 'DELETE', url: `/v1/admin/keys/${id}`, headers: adminAuth });
  assert.equal(revoked.statusCode, 200);
  assert.ok(revoked.json().revokedAt);
  assert.equal((await send(one, key)).statusCode, 401, 'refused at once by the replica that revoked it');
  const t1 = Date.now();
  await waitFor(async () => (await send(two, key)).statusCode === 401, 1000, 'the revoked key to be refused on replica two');
  const revokedMs = Date.now() - t1;
  assert.ok(revokedMs < 1000, `refused after ${revokedMs} ms`);
  process.stdout.write(`# new key usable on the other replica after ${seenMs} ms; revocation seen there after ${revokedMs} ms\n`);
  assert.equal((await one.app.inject({ method: 'DELETE', url: '/v1/admin/keys/0123456789abcdef', headers: adminAuth })).statusCode, 404);
});

test('scopes on the send routes: a read-only key may not send, a send+read key may do both', async () => {
  const created = await one.app.inject({ method: 'POST', url: '/v1/admin/keys', headers: adminAuth, payload: { tenant: 'acme', name: 'dashboards', scopes: ['read'] } });
  const reader = created.json().key as string;
  createdKeys.push(reader);
  assert.equal((await send(one, reader)).statusCode, 403);
  assert.equal((await one.app.inject({ method: 'POST', url: '/v1/emails/batch', headers: { authorization: `Bearer ${reader}` }, payload: { messages: [email()] } })).statusCode, 403);
  assert.equal((await one.app.inject({ method: 'GET', url: '/v1/templates', headers: { authorization: `Bearer ${reader}` } })).statusCode, 200);
  const both = (await one.app.inject({ method: 'POST', url: '/v1/admin/keys', headers: adminAuth, payload: { tenant: 'acme', name: 'app' } })).json();
  assert.deepEqual(both.scopes, ['send', 'read'], 'default scopes');
  createdKeys.push(both.key);
  assert.equal((await send(one, both.key)).statusCode, 202);
  // Bootstrap keys keep sending and reading.
  assert.equal((await send(one, KEYS.acme)).statusCode, 202);
  assert.equal((await one.app.inject({ method: 'GET', url: '/v1/templates', headers: auth('acme') })).statusCode, 200);
  const forAcme = (await one.app.inject({ method: 'GET', url: '/v1/admin/keys?tenant=acme', headers: adminAuth })).json().items;
  const forEu = (await one.app.inject({ method: 'GET', url: `/v1/admin/keys?tenant=${encodeURIComponent('acme/eu')}`, headers: adminAuth })).json().items;
  assert.equal(forAcme.length, 2);
  assert.equal(forEu.length, 0, "acme's keys are not acme/eu's");
});

test('sender domains added by API apply to sending on every replica at once, per tenant', async () => {
  const from = (addr: string) => email({ from: `Sender <${addr}>` });
  assert.equal((await send(two, KEYS.acme, from('a@anything.example'))).statusCode, 202, 'no domains yet: any');
  const added = await one.app.inject({ method: 'POST', url: '/v1/admin/domains', headers: adminAuth, payload: { tenant: 'acme', domain: 'Acme.Example' } });
  assert.equal(added.statusCode, 201);
  assert.equal(added.json().domain, 'acme.example');
  await waitFor(async () => (await send(two, KEYS.acme, from('a@anything.example'))).statusCode === 400, 1000, 'replica two to refuse other domains');
  assert.equal((await send(two, KEYS.acme, from('a@acme.example'))).statusCode, 202);
  assert.equal((await send(two, KEYS['acme/eu'], from('a@anything.example'))).statusCode, 202, 'acme/eu is not restricted by acme');
  const list = await one.app.inject({ method: 'GET', url: '/v1/admin/domains?tenant=acme', headers: adminAuth });
  assert.deepEqual(list.json().items.map((d: { domain: string }) => d.domain), ['acme.example']);
  assert.equal((await one.app.inject({ method: 'GET', url: `/v1/admin/domains?tenant=${encodeURIComponent('acme/eu')}`, headers: adminAuth })).json().items.length, 0);
  const all = (await one.app.inject({ method: 'GET', url: '/v1/admin/domains', headers: adminAuth })).json().items;
  assert.deepEqual(all.map((d: { tenant: string; domain: string; source: string }) => `${d.tenant} ${d.domain} ${d.source}`), ['acme acme.example admin', 'globex globex.example config']);
  assert.equal((await one.app.inject({ method: 'DELETE', url: `/v1/admin/domains/acme.example?tenant=${encodeURIComponent('acme/eu')}`, headers: adminAuth })).statusCode, 404);
  assert.equal((await one.app.inject({ method: 'DELETE', url: '/v1/admin/domains/acme.example?tenant=acme', headers: adminAuth })).statusCode, 204);
  await waitFor(async () => (await send(two, KEYS.acme, from('a@anything.example'))).statusCode === 202, 1000, 'replica two to allow any domain again');
});

test('metrics count auth failures by reason and live keys by tenant and scope', async () => {
  const before = await registry.getSingleMetricAsString('postline_auth_failures_total');
  const count = (text: string, reason: string) => Number(new RegExp(`reason="${reason}"} (\\d+)`).exec(text)?.[1] ?? NaN);
  await send(one, 'pl_wrong');
  await one.app.inject({ method: 'GET', url: '/v1/admin/keys', headers: auth('globex') });
  const text = await registry.getSingleMetricAsString('postline_auth_failures_total');
  assert.equal(count(text, 'unknown'), count(before, 'unknown') + 1);
  assert.equal(count(text, 'scope'), count(before, 'scope') + 1);
  assert.ok(count(text, 'revoked') >= 1, "the revoked key's refusal was counted");
  const gauge = await registry.getSingleMetricAsString('postline_api_keys');
  assert.match(gauge, /postline_api_keys\{tenant="acme",scope="read"\} 2/);
  assert.match(gauge, /postline_api_keys\{tenant="acme",scope="send"\} 1/);
  assert.doesNotMatch(gauge, /initech/, 'revoked keys are not live');
});

test('no created key ever appears in the logs', () => {
  const all = logLines.join('');
  assert.ok(all.includes('API key created'), 'the creations were logged');
  assert.ok(all.includes('API key revoked'));
  assert.equal(createdKeys.length, 3);
  for (const key of createdKeys) {
    assert.ok(!all.includes(key), 'a created key was logged');
    assert.ok(!all.includes(key.slice(20)), 'a created key\'s secret was logged');
  }
  assert.equal([...all.matchAll(/pl_[0-9a-f]{16}_[A-Za-z0-9_-]{43}/g)].length, 0, 'something shaped like a key was logged');
  assert.ok(!all.includes(ADMIN_KEY) && !all.includes(KEYS.acme));
});
