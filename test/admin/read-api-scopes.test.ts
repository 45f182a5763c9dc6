/**
 * The read API (analytics) checks the same keys with the `read` scope: an unknown or revoked
 * key gets 401, a key without `read` 403 — before any query runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import pino from 'pino';
import type { ClickHouseClient } from '@clickhouse/client';
import { registerReadApi } from '../../services/analytics/read-api/read-api.js';
import { readApiAuthenticate } from '../../services/analytics/main.js';
import { AdminDirectory, type AdminStore } from '../../shared/admin/admin-directory.js';
import { ApiKeyStore, hashApiKey } from '../../shared/http/api-keys.js';
import type { AdminRecord } from '../../shared/contracts/admin-record.js';

test('read API: a send-only key is 403, a revoked key 401, a read key reaches the query', async () => {
  let directory: AdminDirectory;
  const store: AdminStore = { put: async (key: string, value: AdminRecord | null) => directory.apply(key, value ?? undefined), catchUp: async () => {} };
  directory = new AdminDirectory(store);
  const keys = new ApiKeyStore([{ tenant: 'acme', keyHash: hashApiKey('boot-key') }, { tenant: 'ops', keyHash: hashApiKey('admin-key'), scopes: ['admin'] }], directory);
  const sender = await directory.createKey({ tenant: 'acme/eu', name: 's', scopes: ['send'] });
  const reader = await directory.createKey({ tenant: 'acme/eu', name: 'r', scopes: ['read'] });
  let queried: string | undefined;
  // A client that records the query instead of running it: reaching it means authentication passed.
  const client = {
    query: async (q: { query_params?: Record<string, unknown> }) => {
      queried = String(q.query_params?.tenant ?? 'queried');
      throw Object.assign(new Error('no ClickHouse here'), { code: 'ECONNREFUSED' });
    },
  } as unknown as ClickHouseClient;
  const app = Fastify();
  registerReadApi(app, { client, authenticate: readApiAuthenticate(keys, pino({ level: 'silent' })) });
  const get = (key: string) => app.inject({ method: 'GET', url: '/v1/messages/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b', headers: { authorization: `Bearer ${key}` } });

  const forbidden = await get(sender.key);
  assert.equal(forbidden.statusCode, 403);
  assert.equal(forbidden.json().error.code, 'FORBIDDEN');
  assert.equal((await get('admin-key')).statusCode, 403, 'admin is not read');
  assert.equal(queried, undefined);
  assert.equal((await get(reader.key)).statusCode, 503, 'authenticated: the (absent) store answers');
  assert.equal(queried, 'acme/eu');
  assert.equal((await get('boot-key')).statusCode, 503, 'bootstrap keys read');
  await directory.revokeKey(reader.view.id);
  assert.equal((await get(reader.key)).statusCode, 401);
  assert.equal((await get('')).statusCode, 401);
  await app.close();
});
