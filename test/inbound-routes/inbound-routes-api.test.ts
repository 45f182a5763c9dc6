/**
 * `/v1/inbound-routes` on real parts (ingest on the embedded broker): a tenant claims, lists,
 * reads and releases inbound domains; `acme` and `acme/eu` (names extending each other) never
 * see or change each other's; a domain has one tenant (409 for another, also when two replicas
 * take the claims at the same moment); a second replica reads the routes from the topic.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { IngestHarness, auth } from '../ingest/ingest-harness.js';

let h: IngestHarness;
before(async () => {
  h = await IngestHarness.start();
});
after(() => h.stop());

const BOUNCES = 'bounces.example.com';

test('claim, list, read and release an inbound domain; acme/eu never sees or touches acme’s', async () => {
  const { app } = await h.ingest({ 'feedback.returnPathDomain': BOUNCES });
  const post = (tenant: 'acme' | 'acme/eu', payload: Record<string, unknown>) => app.inject({ method: 'POST', url: '/v1/inbound-routes', headers: auth(tenant), payload });

  const created = await post('acme', { domain: 'Inbound.Acme-API.test.' });
  assert.equal(created.statusCode, 201, created.body);
  assert.equal(created.json().domain, 'inbound.acme-api.test');
  const rewritten = await post('acme', { domain: 'inbound.acme-api.test', localParts: ['support', 'Sales'] });
  assert.equal(rewritten.statusCode, 200, rewritten.body);
  assert.deepEqual(rewritten.json().localParts, ['sales', 'support']);
  assert.equal(rewritten.json().createdAt, created.json().createdAt);

  const taken = await post('acme/eu', { domain: 'INBOUND.acme-api.test' });
  assert.equal(taken.statusCode, 409, taken.body);
  assert.equal(taken.json().error.code, 'DOMAIN_TAKEN');
  assert.equal((await post('acme/eu', { domain: 'eu.acme-api.test' })).statusCode, 201);

  const list = (tenant: 'acme' | 'acme/eu') => app.inject({ method: 'GET', url: '/v1/inbound-routes', headers: auth(tenant) }).then((r) => r.json().routes.map((x: { domain: string }) => x.domain));
  assert.deepEqual(await list('acme'), ['inbound.acme-api.test']);
  assert.deepEqual(await list('acme/eu'), ['eu.acme-api.test']);
  assert.equal((await app.inject({ method: 'GET', url: '/v1/inbound-routes/inbound.acme-api.test', headers: auth('acme') })).statusCode, 200);
  assert.equal((await app.inject({ method: 'GET', url: '/v1/inbound-routes/inbound.acme-api.test', headers: auth('acme/eu') })).statusCode, 404, 'another tenant’s domain is not shown');
  assert.equal((await app.inject({ method: 'DELETE', url: '/v1/inbound-routes/inbound.acme-api.test', headers: auth('acme/eu') })).statusCode, 404, 'nor released');

  // A replica started later reads the routes from the topic.
  const replica = await h.ingest({ 'feedback.returnPathDomain': BOUNCES });
  const there = await replica.app.inject({ method: 'GET', url: '/v1/inbound-routes/inbound.acme-api.test', headers: auth('acme') });
  assert.deepEqual(there.json().localParts, ['sales', 'support']);

  assert.equal((await app.inject({ method: 'DELETE', url: '/v1/inbound-routes/inbound.acme-api.test', headers: auth('acme') })).statusCode, 204);
  assert.equal((await app.inject({ method: 'GET', url: '/v1/inbound-routes/inbound.acme-api.test', headers: auth('acme') })).statusCode, 404);
  // Released: another tenant may claim it now.
  assert.equal((await post('acme/eu', { domain: 'inbound.acme-api.test' })).statusCode, 201);
});

test('bad domains, the bounce domain, bad local parts and unknown fields are 400s; no key is 401', async () => {
  const { app } = await h.ingest({ 'feedback.returnPathDomain': BOUNCES });
  const post = (payload: Record<string, unknown>, headers: Record<string, string> = auth('acme')) => app.inject({ method: 'POST', url: '/v1/inbound-routes', headers, payload });
  for (const payload of [{ domain: 'localhost' }, { domain: 'a@b.test' }, { domain: BOUNCES }, { domain: 'x.test', localParts: ['has space'] }, { domain: 'x.test', localParts: [] }, { domain: 'x.test', extra: 1 }, {}]) {
    const r = await post(payload);
    assert.equal(r.statusCode, 400, `${JSON.stringify(payload)}: ${r.body}`);
  }
  assert.equal((await post({ domain: 'x.test' }, {})).statusCode, 401);
  assert.equal((await app.inject({ method: 'GET', url: '/v1/inbound-routes' })).statusCode, 401);
});

test('a tenant with sender domains claims only those and their subdomains: acme/eu cannot take acme’s domain first', async () => {
  const { app } = await h.ingest({ 'feedback.returnPathDomain': BOUNCES, 'ingest.senderDomains': { acme: ['owned-acme.test'], 'acme/eu': ['eu.owned-acme.test'] } });
  const post = (tenant: 'acme' | 'acme/eu', domain: string) => app.inject({ method: 'POST', url: '/v1/inbound-routes', headers: auth(tenant), payload: { domain } });
  const squat = await post('acme/eu', 'inbound.owned-acme.test');
  assert.equal(squat.statusCode, 400, squat.body);
  assert.equal(squat.json().error.fields[0].field, 'domain');
  assert.match(squat.json().error.fields[0].message, /not one of this tenant's sender domains/);
  assert.equal((await post('acme/eu', 'in.eu.owned-acme.test')).statusCode, 201);
  assert.equal((await post('acme', 'inbound.owned-acme.test')).statusCode, 201);
  assert.equal((await post('acme', 'owned-acme.test')).statusCode, 201);
  assert.equal((await post('acme', 'elsewhere.test')).statusCode, 400);
});

test('two tenants claiming one domain on two replicas at the same moment: one 201, one 409, and both replicas agree', async () => {
  const a = await h.ingest();
  const b = await h.ingest();
  for (let i = 0; i < 5; i++) {
    const domain = `race-${i}.acme-api.test`;
    const [ra, rb] = await Promise.all([
      a.app.inject({ method: 'POST', url: '/v1/inbound-routes', headers: auth('acme'), payload: { domain } }),
      b.app.inject({ method: 'POST', url: '/v1/inbound-routes', headers: auth('acme/eu'), payload: { domain } }),
    ]);
    assert.deepEqual([ra.statusCode, rb.statusCode].sort(), [201, 409], `${domain}: ${ra.body} ${rb.body}`);
    const winner = ra.statusCode === 201 ? 'acme' : 'acme/eu';
    const loser = winner === 'acme' ? 'acme/eu' : 'acme';
    for (const replica of [a, b]) {
      assert.equal((await replica.app.inject({ method: 'GET', url: `/v1/inbound-routes/${domain}`, headers: auth(winner) })).statusCode, 200);
      assert.equal((await replica.app.inject({ method: 'GET', url: `/v1/inbound-routes/${domain}`, headers: auth(loser) })).statusCode, 404);
    }
  }
});
