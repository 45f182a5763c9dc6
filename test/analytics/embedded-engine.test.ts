/**
 * How the embedded engine (chDB) is started: its server configuration (written into its data
 * directory) and its allocator's configuration (read from the environment when the library loads).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { EMBEDDED_ALLOCATOR_CONF } from '../../services/analytics/clickhouse.js';
import { openTestEngine, select } from './support/engine.js';

test('the embedded engine starts with its server configuration and, unless the user set one, its allocator configuration', async () => {
  delete process.env.JE_MALLOC_CONF;
  const engine = await openTestEngine();
  try {
    assert.equal(process.env.JE_MALLOC_CONF, EMBEDDED_ALLOCATOR_CONF);
    assert.ok(fs.existsSync(path.join(engine.dataDir, 'postline-engine.xml')));
    const rows = await select<{ name: string; value: string }>(engine.client, "SELECT name, value FROM system.server_settings WHERE name = 'memory_worker_period_ms'");
    assert.deepEqual(rows, [{ name: 'memory_worker_period_ms', value: '5000' }]);
    // The engine still works as before with the connection that started it closed.
    const db = await engine.freshDatabase();
    const tables = await select<{ name: string }>(engine.client, 'SELECT name FROM system.tables WHERE database = {db:String} AND name = {t:String}', { db, t: 'events' });
    assert.equal(tables.length, 1);
  } finally {
    await engine.destroy();
  }
});

test("a user's allocator configuration is kept", async () => {
  process.env.JE_MALLOC_CONF = 'narenas:2';
  const engine = await openTestEngine();
  try {
    assert.equal(process.env.JE_MALLOC_CONF, 'narenas:2');
    const rows = await select<{ ok: number }>(engine.client, 'SELECT 1 AS ok');
    assert.deepEqual(rows, [{ ok: 1 }]);
  } finally {
    await engine.destroy();
    delete process.env.JE_MALLOC_CONF;
  }
});
