/**
 * Idempotency across a real crash between insert and commit: a child process runs the sink on
 * an embedded engine, inserts its first batch, and is SIGKILLed before committing. A new sink
 * on the same data directory and consumer group then resumes from the uncommitted offsets and
 * ends with every event exactly once — in the events table and in the rollups.
 *
 * This file opens the engine only after the child is dead: a data directory belongs to one
 * process at a time.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Admin, Kafka } from 'kafkajs';
import { startAnalytics, type RunningAnalytics } from '../../services/analytics/main.js';
import { openClickHouse } from '../../services/analytics/clickhouse.js';
import { startTestBroker, tempDir, uniqueName, waitFor, type TestBroker } from '../helpers/broker.js';
import { select } from './support/engine.js';
import { generateEvents } from './support/synthetic-events.js';
import { analyticsConfig, committedTotal, createTopic, produce, testKafka } from './support/sink-harness.js';
import type { EmailEvent } from '../../shared/contracts/email-event.js';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'support', 'crashing-analytics.ts');
let broker: TestBroker;
let kafka: Kafka;
let admin: Admin;
let dataDir: string;
let client: ClickHouseClient | undefined;
let resumed: RunningAnalytics | undefined;

before(async () => {
  broker = await startTestBroker();
  kafka = testKafka(broker.bootstrap);
  admin = kafka.admin();
  await admin.connect();
  dataDir = tempDir('postline-chdb-crash-');
});
after(async () => {
  await resumed?.close();
  await client?.close();
  await admin?.disconnect();
  await broker?.destroy();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

/** Runs the child until its first insert returned, then kills it; resolves with the rows it stored. */
function runUntilStoredThenKill(settings: Record<string, unknown>): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD], { env: { ...process.env, ANALYTICS_CRASH: JSON.stringify(settings) }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let stored: number | undefined;
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const onData = (chunk: Buffer): void => {
      out += chunk.toString();
      const m = /STORED (\d+)/.exec(out);
      if (m && stored === undefined) {
        stored = Number(m[1]);
        child.kill('SIGKILL');
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (stored !== undefined && signal === 'SIGKILL') resolve(stored);
      else reject(new Error(`child exited (code ${code}, signal ${signal}) before storing a batch:\n${out.slice(-3000)}`));
    });
  });
}

test('a crash between insert and commit: the restarted sink skips what was stored and ends with every event exactly once', async () => {
  const topic = uniqueName('events');
  const groupId = uniqueName('analytics');
  const database = 'crash_test';
  await createTopic(admin, topic, 3);
  const events: EmailEvent[] = [];
  generateEvents({ messages: 400, start: Date.now() - 3_600_000, spanMs: 3_600_000, seed: 9 }, (e) => events.push(e));
  await produce(kafka, topic, events);

  const stored = await runUntilStoredThenKill({ bootstrap: broker.bootstrap, database, dataDir, topic, groupId, batchMaxRows: 500 });
  assert.ok(stored >= 500 && stored < events.length, `first batch held ${stored} of ${events.length}`);
  assert.equal(await committedTotal(admin, groupId, topic), 0, 'the crash came before any commit');

  ({ client } = await openClickHouse({ url: '', user: '', password: '', dataDir, requestTimeoutMs: 30_000 }));
  const rows = async (): Promise<number> => Number((await select<{ n: number }>(client!, `SELECT count() AS n FROM ${database}.events`))[0].n);
  assert.equal(await rows(), stored, 'the killed process’s insert is in the table');

  const config = analyticsConfig(broker.bootstrap, { 'analytics.database': database, 'analytics.groupId': groupId, 'analytics.batchMaxRows': 500 });
  resumed = await startAnalytics(config, { clickhouse: client, listen: false, topic, authenticate: () => null });
  let skippedStored = 0;
  resumed.sink.on('skipped', (fate: string, n: number) => fate === 'stored' && (skippedStored += n));
  await waitFor(async () => (await committedTotal(admin, groupId, topic)) === events.length, 30_000, 'all offsets committed after the restart');

  assert.equal(skippedStored, stored, 'exactly the stored records were skipped');
  assert.equal(await rows(), events.length);
  const distinct = await select<{ n: number }>(client, `SELECT uniqExact(event_id) AS n FROM ${database}.events`);
  assert.equal(Number(distinct[0].n), events.length);
  const rollup = await select<{ n: number }>(client, `SELECT sum(events) AS n FROM ${database}.stats_per_minute`);
  assert.equal(Number(rollup[0].n), events.length, 'the rollups count every event once');
});
