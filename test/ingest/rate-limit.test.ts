/** The per-tenant rate limit: over it a tenant gets 429 and sends nothing; other tenants are unaffected. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Topics } from '../../shared/topics.js';
import { IngestHarness, auth, email } from './ingest-harness.js';
import type { IngestHandle } from '../../services/ingest/main.js';

let h: IngestHarness;
let ingest: IngestHandle;

before(async () => {
  h = await IngestHarness.start();
  ingest = await h.ingest({ 'ingest.rateLimitMax': 3, 'ingest.rateLimitWindowMs': 60_000 });
});
after(() => h.stop());

const post = (tenant: 'acme' | 'globex') => ingest.app.inject({ method: 'POST', url: '/v1/emails', headers: auth(tenant), payload: email() });

test('a tenant over its limit gets 429 with Retry-After and produces nothing; another tenant still sends', async () => {
  for (let i = 0; i < 3; i++) assert.equal((await post('acme')).statusCode, 202);
  const offset = await h.endOffset(Topics.requested);
  const limited = await post('acme');
  assert.equal(limited.statusCode, 429);
  assert.equal(limited.json().error.code, 'RATE_LIMITED');
  assert.ok(Number(limited.headers['retry-after']) > 0);
  assert.equal(await h.endOffset(Topics.requested), offset, 'nothing produced');
  assert.equal((await post('globex')).statusCode, 202);
  // Unauthenticated requests are refused before the limiter: they do not use a tenant's budget.
  const anonymous = await ingest.app.inject({ method: 'POST', url: '/v1/emails', payload: email() });
  assert.equal(anonymous.statusCode, 401);
});
