/**
 * The read API's tenant override (the console's admin tenant switch reaching Messages): an admin
 * key naming a tenant in `Postline-Tenant` reads that tenant's data; a key without `admin` is 403
 * and no query runs. Tenants `acme` and `acme/eu` (a name extending another's) stay apart.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import pino from 'pino';
import type { ClickHouseClient } from '@clickhouse/client';
import { registerReadApi } from '../../services/analytics/read-api/read-api.js';
import { readApiAuthenticate, TENANT_OVERRIDE_HEADER } from '../../services/analytics/main.js';
import { AdminDirectory, type AdminStore } from '../../shared/admin/admin-directory.js';
import { ApiKeyStore, hashApiKey } from '../../shared/http/api-keys.js';
import type { AdminRecord } from '../../shared/contracts/admin-record.js';

test('read API: only an admin key reads another tenant through Postline-Tenant', async () => {
  let directory: AdminDirectory;
  const store: AdminStore = { put: async (key: string, value: AdminRecord | null) => directory.apply(key, value ?? undefined), catchUp: async () => {} };
  directory = new AdminDirectory(store);
  const keys = new ApiKeyStore([{ tenant: 'acme', keyHash: hashApiKey('acme-reader') }, { tenant: 'ops', keyHash: hashApiKey('ops-admin'), scopes: ['read', 'send', 'admin'] }], directory);
  const euReader = await directory.createKey({ tenant: 'acme/eu', name: 'r', scopes: ['read', 'send'] });
  const queried: string[] = [];
  // Records the tenant every query is scoped to instead of running it.
  const client = {
    query: async (q: { query_params?: Record<string, unknown> }) => {
      queried.push(String(q.query_params?.tenant));
      throw Object.assign(new Error('no ClickHouse here'), { code: 'ECONNREFUSED' });
    },
  } as unknown as ClickHouseClient;
  const app = Fastify();
  registerReadApi(app, { client, authenticate: readApiAuthenticate(keys, pino({ level: 'silent' })) });
  const get = (key: string, as?: string) =>
    app.inject({ method: 'GET', url: '/v1/messages?recipient=a%40example.com', headers: { authorization: `Bearer ${key}`, ...(as !== undefined ? { [TENANT_OVERRIDE_HEADER]: as } : {}) } });

  // Not admin: refused before any query, for another tenant and for a name extending its own.
  for (const [key, as] of [['acme-reader', 'acme/eu'], [euReader.key, 'acme'], ['acme-reader', 'acme']] as const) {
    const r = await get(key, as);
    assert.equal(r.statusCode, 403, `${key} as ${as}`);
    assert.match(r.json().error.message, /admin/);
  }
  assert.deepEqual(queried, []);

  // Without the header every key reads its own tenant.
  assert.equal((await get('acme-reader')).statusCode, 503);
  assert.equal((await get(euReader.key)).statusCode, 503);
  assert.deepEqual(queried.splice(0), ['acme', 'acme/eu']);

  // The admin key reads the tenant it names, and its own without the header.
  assert.equal((await get('ops-admin', 'acme/eu')).statusCode, 503);
  assert.equal((await get('ops-admin', 'acme')).statusCode, 503);
  assert.equal((await get('ops-admin')).statusCode, 503);
  assert.deepEqual(queried.splice(0), ['acme/eu', 'acme', 'ops']);

  // An empty name is a 400, not "every tenant".
  const empty = await get('ops-admin', '');
  assert.equal(empty.statusCode, 400);
  assert.deepEqual(queried, []);
  await app.close();
});
