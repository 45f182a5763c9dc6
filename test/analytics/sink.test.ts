/**
 * The sink through the real embedded broker into the in-process engine: every event lands
 * exactly once with offsets committed after the insert, malformed records go to email.dead,
 * an insert that stored but reported failure is retried without duplicates, and an unavailable
 * or hanging ClickHouse pauses consumption without losing anything.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Admin, Kafka } from 'kafkajs';
import { startAnalytics, type RunningAnalytics } from '../../services/analytics/main.js';
import type { EventsWriter } from '../../services/analytics/sink/events-writer.js';
import { startTestBroker, uniqueName, waitFor, type TestBroker } from '../helpers/broker.js';
import { openTestEngine, select, type TestEngine } from './support/engine.js';
import { generateEvents } from './support/synthetic-events.js';
import { FaultyWriter, analyticsConfig, committedTotal, createTopic, deadLettersFrom, endOffsetsTotal, produce, testKafka } from './support/sink-harness.js';
import type { EmailEvent } from '../../shared/contracts/email-event.js';
import { hashApiKey } from '../../services/ingest/api-keys.js';

let broker: TestBroker;
let engine: TestEngine;
let kafka: Kafka;
let admin: Admin;
const running: RunningAnalytics[] = [];

before(async () => {
  [broker, engine] = await Promise.all([startTestBroker(), openTestEngine()]);
  kafka = testKafka(broker.bootstrap);
  admin = kafka.admin();
  await admin.connect();
});
after(async () => {
  for (const r of running) await r.close();
  await admin?.disconnect();
  await broker?.destroy();
  await engine?.destroy();
});

function events(messages: number, seed: number): EmailEvent[] {
  const out: EmailEvent[] = [];
  generateEvents({ messages, start: Date.now() - 3_600_000, spanMs: 3_600_000, seed }, (e) => out.push(e));
  return out;
}

interface Started {
  r: RunningAnalytics;
  groupId: string;
}

async function start(topic: string, database: string, overrides: Record<string, unknown> = {}, wrapWriter?: (w: EventsWriter) => EventsWriter): Promise<Started> {
  const groupId = uniqueName('analytics');
  const config = analyticsConfig(broker.bootstrap, { 'analytics.database': database, 'analytics.groupId': groupId, ...overrides });
  const r = await startAnalytics(config, { clickhouse: engine.client, listen: false, topic, authenticate: () => null, wrapWriter });
  running.push(r);
  return { r, groupId };
}

async function count(database: string): Promise<number> {
  return Number((await select<{ n: number }>(engine.client, `SELECT count() AS n FROM ${database}.events`))[0].n);
}

async function rollupTotal(database: string, table = 'stats_per_minute'): Promise<number> {
  return Number((await select<{ n: number }>(engine.client, `SELECT sum(events) AS n FROM ${database}.${table}`))[0].n);
}

test('every event lands once, the rollups agree, offsets are committed, malformed records go to email.dead with the reason', async () => {
  const topic = uniqueName('events');
  await createTopic(admin, topic, 3);
  const database = await engine.freshDatabase('sink');
  const good = events(600, 1);
  assert.ok(good.length > 2000);
  const malformed = ['not json at all', JSON.stringify({ schemaVersion: 1, eventId: 'x', type: 'sent' }), JSON.stringify({ ...good[0], eventId: 'y', type: 'teleported' })];
  await produce(kafka, topic, [...good.slice(0, 1000), ...malformed, ...good.slice(1000)]);
  const { groupId } = await start(topic, database);

  await waitFor(async () => (await count(database)) === good.length, 20_000, `${good.length} rows`);
  const total = good.length + malformed.length;
  await waitFor(async () => (await committedTotal(admin, groupId, topic)) === total, 10_000, 'all offsets committed');
  assert.equal(await endOffsetsTotal(admin, topic), total);
  assert.equal(await rollupTotal(database), good.length);
  const ids = await select<{ n: number }>(engine.client, `SELECT uniqExact(event_id) AS n FROM ${database}.events`);
  assert.equal(Number(ids[0].n), good.length);

  const letters = await deadLettersFrom(kafka, topic, 3);
  const reasons = letters.map((l) => l.reason).sort();
  assert.equal(letters.length, 3);
  assert.ok(letters.every((l) => l.code === 'VALIDATION_FAILED' && l.stage === 'analytics'));
  assert.ok(reasons.some((r) => /not JSON/.test(r)), reasons.join(' | '));
  assert.ok(reasons.some((r) => /messageId|tenant|at/.test(r)), reasons.join(' | '));
  assert.ok(reasons.some((r) => /type/.test(r)), reasons.join(' | '));
  assert.ok(letters.some((l) => l.source.value === 'not json at all'));
});

test('an insert that stored its rows but reported failure is retried with the same token: no duplicates, rollups included', async () => {
  const topic = uniqueName('events');
  await createTopic(admin, topic, 2);
  const database = await engine.freshDatabase('retry');
  const batch = events(300, 2);
  let failedAfterStoring = 0;
  // ClickHouse stores the block, then the connection drops before the answer arrives.
  const lossy = (w: EventsWriter): EventsWriter => ({
    ...w,
    insert: async (rows, token) => {
      await w.insert(rows, token);
      if (failedAfterStoring++ < 3) throw new Error('socket hang up');
    },
  });
  const { groupId } = await start(topic, database, { 'analytics.batchMaxRows': 200 }, lossy);
  await produce(kafka, topic, batch);
  await waitFor(async () => (await committedTotal(admin, groupId, topic)) === batch.length, 20_000, 'all offsets committed');
  assert.ok(failedAfterStoring > 3, 'the failure was injected');
  assert.equal(await count(database), batch.length);
  assert.equal(await rollupTotal(database), batch.length);
  assert.equal(await rollupTotal(database, 'stats_per_hour'), batch.length, 'the cascaded hourly rollup too');
  const byTag = await select<{ n: number }>(engine.client, `SELECT sum(events) AS n FROM ${database}.stats_per_minute_by_tag`);
  assert.equal(Number(byTag[0].n), batch.reduce((n, e) => n + (e.tags?.length ?? 0), 0));
});

test('ClickHouse down mid-stream: consumption pauses at the buffer bound, nothing is committed or lost, and it catches up', async () => {
  const topic = uniqueName('events');
  await createTopic(admin, topic, 2);
  const database = await engine.freshDatabase('down');
  const faulty = new FaultyWriter();
  const { r, groupId } = await start(topic, database, { 'analytics.batchMaxRows': 100, 'analytics.maxBufferedRows': 400 }, faulty.wrap);
  const first = events(50, 3);
  await produce(kafka, topic, first);
  await waitFor(async () => (await committedTotal(admin, groupId, topic)) === first.length, 15_000, 'first events committed');

  faulty.mode = 'down';
  let paused = false;
  r.sink.on('paused', () => (paused = true));
  const second = events(1000, 4);
  await produce(kafka, topic, second);
  await waitFor(() => paused, 15_000, 'consumption paused');
  const attemptsWhenPaused = faulty.attempts;
  await waitFor(() => faulty.attempts >= attemptsWhenPaused + 3, 10_000, 'inserts retried');
  // Bounded memory: once paused the buffer stops growing (fetches already under way may still land).
  const held = r.sink.bufferedRows;
  await waitFor(() => faulty.attempts >= attemptsWhenPaused + 6, 10_000, 'more retries');
  assert.equal(r.sink.bufferedRows, held, 'nothing more consumed while paused');
  assert.ok(held < second.length, `buffered ${held} of ${second.length}`);
  const readyz = await r.app.inject({ url: '/readyz' });
  assert.equal(readyz.statusCode, 503);
  assert.match(readyz.json().checks.clickhouse, /ClickHouse insert failing/);
  assert.equal(await committedTotal(admin, groupId, topic), first.length);
  assert.equal(await count(database), first.length);

  faulty.recover();
  const all = first.length + second.length;
  await waitFor(async () => (await committedTotal(admin, groupId, topic)) === all, 30_000, 'caught up');
  assert.equal(await count(database), all);
  assert.equal(await rollupTotal(database), all);
  assert.equal((await r.app.inject({ url: '/readyz' })).statusCode, 200);
});

test('ClickHouse down from the start: partitions wait, nothing is consumed or committed, and everything lands once it is back', async () => {
  const topic = uniqueName('events');
  await createTopic(admin, topic, 2);
  const database = await engine.freshDatabase('downstart');
  const faulty = new FaultyWriter();
  faulty.mode = 'down';
  const { groupId } = await start(topic, database, {}, faulty.wrap);
  const batch = events(300, 5);
  await produce(kafka, topic, batch);
  await waitFor(() => faulty.lookups >= 6, 15_000, 'stored-offset look-ups retried');
  assert.equal(faulty.attempts, 0, 'nothing inserted before knowing what is stored');
  assert.equal(await committedTotal(admin, groupId, topic), 0);
  faulty.recover();
  await waitFor(async () => (await committedTotal(admin, groupId, topic)) === batch.length, 30_000, 'caught up');
  assert.equal(await count(database), batch.length);
});

test('ClickHouse hanging: nothing is committed while an insert hangs, and everything lands once it answers', async () => {
  const topic = uniqueName('events');
  await createTopic(admin, topic, 2);
  const database = await engine.freshDatabase('hang');
  const faulty = new FaultyWriter();
  const { r, groupId } = await start(topic, database, { 'analytics.batchMaxRows': 200, 'analytics.maxBufferedRows': 600 }, faulty.wrap);
  faulty.mode = 'hang';
  const batch = events(500, 4);
  let paused = false;
  r.sink.on('paused', () => (paused = true));
  await produce(kafka, topic, batch);
  await waitFor(() => paused, 15_000, 'consumption paused behind the hanging insert');
  assert.equal(faulty.attempts, 1, 'one insert at a time');
  assert.equal(await committedTotal(admin, groupId, topic), 0);
  faulty.recover();
  await waitFor(async () => (await committedTotal(admin, groupId, topic)) === batch.length, 30_000, 'caught up');
  assert.equal(await count(database), batch.length);
});

test('the service on its port: the read API takes the send API’s keys, and /metrics shows inserts, batches and lag', async () => {
  const topic = uniqueName('events');
  await createTopic(admin, topic, 2);
  const database = await engine.freshDatabase('service');
  const config = analyticsConfig(broker.bootstrap, {
    'analytics.database': database,
    'analytics.port': 0,
    'analytics.host': '127.0.0.1',
    'ingest.apiKeys': [{ tenant: 'acme', keyHash: hashApiKey('key-acme') }],
  });
  const r = await startAnalytics(config, { clickhouse: engine.client, topic });
  running.push(r);
  const batch = events(100, 6);
  await produce(kafka, topic, [...batch, '{"not":"an event"}']);
  await waitFor(async () => (await count(database)) === batch.length, 20_000, 'rows');
  const acmeMessage = batch.find((e) => e.tenant === 'acme')!.messageId;

  const api = (url: string, key?: string) => fetch(`${r.address}${url}`, { headers: key ? { authorization: `Bearer ${key}` } : {} });
  const ok = await api(`/v1/messages/${acmeMessage}`, 'key-acme');
  assert.equal(ok.status, 200);
  assert.equal(((await ok.json()) as { messageId: string }).messageId, acmeMessage);
  assert.equal((await api(`/v1/messages/${acmeMessage}`, 'wrong-key')).status, 401);
  assert.equal((await api('/healthz')).status, 200);
  await waitFor(async () => (await api('/readyz')).status === 200, 10_000, 'ready');
  // The malformed record's dead letter is counted once it is durable (it may trail the rows).
  const deadLetter = /postline_dead_letters_total\{stage="analytics",code="VALIDATION_FAILED",service="analytics"\} 1/;
  const metrics: string = await waitFor(async () => {
    const text = await (await api('/metrics')).text();
    return deadLetter.test(text) ? text : null;
  }, 10_000, 'the dead letter counted');
  assert.match(metrics, new RegExp(`postline_analytics_rows_inserted_total\\{service="analytics"\\} ${batch.length}`));
  assert.match(metrics, /postline_analytics_insert_seconds_count\{service="analytics"\} [1-9]/);
  assert.match(metrics, /postline_analytics_batch_rows_bucket/);
  assert.match(metrics, new RegExp(`postline_stage_records_processed_total\\{stage="analytics",topic="${topic}",service="analytics"\\} ${batch.length}`));
  assert.match(metrics, new RegExp(`postline_consumer_lag\\{stage="analytics",topic="${topic}",partition="0",service="analytics"\\} 0`));
});

test('under load batches wait longer (fewer, larger inserts); a trickle still goes at batchMaxWaitMs', async () => {
  const topic = uniqueName('events');
  await createTopic(admin, topic, 2);
  const database = await engine.freshDatabase('busy');
  const { r } = await start(topic, database, { 'analytics.batchMaxWaitMs': 200, 'analytics.batchBusyRowsPerSecond': 300, 'analytics.batchBusyWaitMs': 4000 });
  const ages: number[] = [];
  const inserts: number[] = [];
  r.sink.on('batchAge', (ms: number) => ages.push(ms));
  r.sink.on('inserted', (rows: number) => inserts.push(rows));
  // ~2,000 events in one go: far above 300 a second, so the batch keeps filling past 200 ms.
  const burst = events(500, 11);
  await produce(kafka, topic, burst);
  await waitFor(async () => (await count(database)) === burst.length, 20_000, 'the burst stored');
  assert.ok(ages.some((ms) => ms >= 1000), `a batch of the burst waited past batchMaxWaitMs (ages ${ages.map(Math.round).join(', ')} ms)`);
  assert.ok(inserts.length <= 2, `the burst went in at most two inserts: ${inserts.join(', ')}`);
  // Then single events, one at a time: each batch is a trickle, inserted at ~200 ms.
  ages.length = 0;
  const single = events(3, 12).filter((e) => e.type === 'accepted');
  for (const [i, e] of single.entries()) {
    const sent = performance.now();
    await produce(kafka, topic, [e]);
    await waitFor(async () => (await count(database)) === burst.length + i + 1, 10_000, `single event ${i} stored`);
    assert.ok(performance.now() - sent < 3000, `a single event is stored well within batchBusyWaitMs (${Math.round(performance.now() - sent)} ms)`);
  }
  assert.ok(ages.length >= single.length && ages.every((ms) => ms < 1000), `trickle batches go at ~200 ms: ${ages.map(Math.round).join(', ')}`);
});
