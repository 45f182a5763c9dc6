/**
 * How the embedded engine (chDB) is started: with its server configuration, written into its data
 * directory at each start.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { openTestEngine, select } from './support/engine.js';

test('the embedded engine starts with its server configuration and works with the connection that started it closed', async () => {
  const engine = await openTestEngine();
  try {
    assert.ok(fs.existsSync(path.join(engine.dataDir, 'postline-engine.xml')));
    const rows = await select<{ name: string; value: string }>(engine.client, "SELECT name, value FROM system.server_settings WHERE name = 'memory_worker_period_ms'");
    assert.deepEqual(rows, [{ name: 'memory_worker_period_ms', value: '5000' }]);
    const db = await engine.freshDatabase();
    const tables = await select<{ name: string }>(engine.client, 'SELECT name FROM system.tables WHERE database = {db:String} AND name = {t:String}', { db, t: 'events' });
    assert.equal(tables.length, 1);
  } finally {
    await engine.destroy();
  }
});

test('a second start on a new directory in the same process gets the same configuration', async () => {
  const engine = await openTestEngine();
  try {
    const rows = await select<{ value: string }>(engine.client, "SELECT value FROM system.server_settings WHERE name = 'memory_worker_period_ms'");
    assert.deepEqual(rows, [{ value: '5000' }]);
  } finally {
    await engine.destroy();
  }
});
