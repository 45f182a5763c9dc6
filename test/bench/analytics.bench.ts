/**
 * Analytics benchmark (issue 5):
 *
 * - Sink throughput: events/s from `email.events` (the broker in its own process) to rows
 *   visible in the events table of the in-process engine, beside the raw limit measured in the
 *   same run: `@clickhouse/client` inserts of the same rows, in the same batch size, into the
 *   same engine and schema (materialized views included). Targets: ≥ 80% of raw and ≥ 100,000/s.
 * - Timeline: p99 of `GET /v1/messages/:id` over a month of events, beside the engine's floor
 *   (`SELECT 1` through the same client). Target: p99 < 50 ms.
 * - Stats: `GET /v1/stats` over 30 days of 10 M events (generated inside the engine, rollups
 *   built by the views), beside the same figures computed from the raw events table. Target:
 *   < 500 ms.
 *
 * Sizes: `npm run bench` moves 300,000 events through the sink per run (a few minutes in all);
 * POSTLINE_BENCH_ANALYTICS_FULL=1 uses the 1,000,000. `--quick` is a smoke check.
 */
import path from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import Fastify, { type FastifyInstance } from 'fastify';
import pino from 'pino';
import type { Kafka } from 'kafkajs';
import { benchRow, type BenchContext, type BenchRow, type BenchSuite, type SuiteResult } from './bench-suite.js';
import { interleave, withTimeout } from './bench-timing.js';
import { latencyPercentiles, summarize } from './bench-stats.js';
import { interferenceWarnings } from './machine-load.js';
import { startBrokerTarget, type BrokerTarget } from './broker-targets.js';
import { benchKafka } from './kafka-workloads.js';
import { openClickHouse } from '../../services/analytics/clickhouse.js';
import { migrate } from '../../services/analytics/schema/migrator.js';
import { startAnalytics } from '../../services/analytics/main.js';
import { toEventRow, type EventRow } from '../../services/analytics/sink/event-row.js';
import { clickHouseEventsWriter } from '../../services/analytics/sink/events-writer.js';
import { registerReadApi } from '../../services/analytics/read-api/read-api.js';
import { loadPostlineConfig } from '../../shared/config.js';
import { EmailEventContract } from '../../shared/contracts/email-event.js';
import { generateEvents } from '../analytics/support/synthetic-events.js';
import { insertVolume, tableSizes } from '../analytics/support/volume-data.js';

interface Params {
  sinkEvents: number;
  statsEvents: number;
  statsDays: number;
  timelineLookups: number;
  statsQueries: number;
  batchMaxRows: number;
  partitions: number;
}

const DEFAULT: Params = { sinkEvents: 300_000, statsEvents: 10_000_000, statsDays: 30, timelineLookups: 1000, statsQueries: 10, batchMaxRows: 10_000, partitions: 6 };
const FULL: Params = { ...DEFAULT, sinkEvents: 1_000_000 };
const QUICK: Params = { ...DEFAULT, sinkEvents: 30_000, statsEvents: 1_000_000, timelineLookups: 200, statsQueries: 3 };
const DAY = 86_400_000;
const MB = 1024 * 1024;

async function count(client: ClickHouseClient, table: string): Promise<number> {
  const rs = await client.query({ query: `SELECT count() AS n FROM ${table}`, format: 'JSONEachRow' });
  return Number((await rs.json<{ n: number }>())[0].n);
}

async function produceAll(kafka: Kafka, topic: string, values: Array<{ key: string; value: Buffer }>, ctx: BenchContext): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: DEFAULT.partitions }] });
  await admin.disconnect();
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const inFlight = new Set<Promise<unknown>>();
  for (let i = 0; i < values.length; i += 5000) {
    const p = producer.send({ topic, acks: 1, messages: values.slice(i, i + 5000) }).finally(() => inFlight.delete(p));
    inFlight.add(p);
    if (inFlight.size >= 4) await Promise.race(inFlight);
    if (i % 200_000 === 0) ctx.progress(`produced ${i} events`);
  }
  await Promise.all(inFlight);
  await producer.disconnect();
}

/** Raw limit: the same rows through the sink's writer (same client, batch size, token, schema). */
async function rawInsert(client: ClickHouseClient, database: string, rows: EventRow[], batch: number): Promise<number> {
  const writer = clickHouseEventsWriter(client, database);
  const t0 = performance.now();
  for (let i = 0; i < rows.length; i += batch) await writer.insert(rows.slice(i, i + batch), `raw-${database}-${i}`);
  return rows.length / ((performance.now() - t0) / 1000);
}

/** Sink: from its first consumed record to the last row visible, via the real service. */
async function sinkRun(ctx: BenchContext, client: ClickHouseClient, database: string, broker: BrokerTarget, topic: string, p: Params, run: number): Promise<number> {
  const config = loadPostlineConfig({
    env: {},
    overrides: {
      'log.level': 'warn',
      'kafka.brokers': [broker.bootstrap],
      'kafka.createTopics': false,
      'analytics.database': database,
      'analytics.groupId': `bench-analytics-${run}-${Date.now()}`,
      'analytics.batchMaxRows': p.batchMaxRows,
      'analytics.maxBufferedRows': p.batchMaxRows * 5,
    },
  });
  const service = await startAnalytics(config, { clickhouse: client, listen: false, topic, authenticate: () => null, logger: pino({ level: 'warn' }) });
  let first: number | undefined;
  service.sink.on('buffered', (n: number) => {
    if (n > 0) first ??= performance.now();
  });
  try {
    const deadline = Date.now() + 300_000;
    for (;;) {
      if ((await count(client, `${database}.events`)) >= p.sinkEvents) break;
      if (Date.now() > deadline || ctx.signal.aborted) throw new Error(`sink run ${run} did not finish`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return p.sinkEvents / ((performance.now() - (first ?? 0)) / 1000);
  } finally {
    await service.close();
  }
}

async function sinkRows(ctx: BenchContext, client: ClickHouseClient, broker: BrokerTarget, p: Params): Promise<{ rows: BenchRow[]; notes: string[] }> {
  const events: ReturnType<typeof EmailEventContract.decode>[] = [];
  // About 3.5 events per message; generate enough and keep exactly sinkEvents.
  generateEvents({ messages: Math.ceil(p.sinkEvents / 3) + 100, start: Date.now() - DAY, spanMs: DAY, seed: 7 }, (e) => {
    if (events.length < p.sinkEvents) events.push(e);
  });
  if (events.length < p.sinkEvents) throw new Error(`generated only ${events.length} events`);
  const encoded = events.map((e) => ({ key: e.messageId, value: EmailEventContract.encode(e) }));
  const bytes = encoded.reduce((n, e) => n + e.value.length, 0);
  const rows = events.map((e, i) => toEventRow(e, { topic: 'raw', partition: i % p.partitions, offset: String(i) }));
  const topic = `bench-events-${Date.now()}`;
  ctx.progress(`producing ${events.length} events (${(bytes / MB).toFixed(0)} MB) to ${topic}`);
  await produceAll(benchKafka(broker.bootstrap, 'bench-analytics'), topic, encoded, ctx);

  const drop = (db: string) => client.command({ query: `DROP DATABASE IF EXISTS ${db} SYNC` });
  const result = await interleave(
    ctx.runs,
    async (run) => {
      const db = `bench_raw_${run}`;
      await migrate(client, { database: db, retentionDays: 90, rollupRetentionDays: 400 });
      const rate = await rawInsert(client, db, rows, p.batchMaxRows);
      ctx.progress(`raw insert run ${run + 1}: ${Math.round(rate)} rows/s`);
      await drop(db);
      return rate;
    },
    async (run) => {
      const db = `bench_sink_${run}`;
      await migrate(client, { database: db, retentionDays: 90, rollupRetentionDays: 400 });
      const rate = await sinkRun(ctx, client, db, broker, topic, p, run);
      ctx.progress(`sink run ${run + 1}: ${Math.round(rate)} events/s`);
      await drop(db);
      return rate;
    },
    () => broker.cpuSeconds(),
  );
  const row = benchRow({
    group: 'sink: email.events → ClickHouse (embedded engine; broker in its own process)',
    name: `${p.sinkEvents.toLocaleString('en')} events, batches of ${p.batchMaxRows.toLocaleString('en')}`,
    unit: 'events/s',
    better: 'higher',
    value: summarize(result.measured),
    baseline: { name: 'raw @clickhouse/client inserts of the same rows', unit: 'rows/s', value: summarize(result.baseline) },
    target: { op: '>=', value: 100_000 },
    warnings: interferenceWarnings(result.foreignCores),
  });
  const ratio = row.ratio;
  return {
    rows: [row],
    notes: [
      `sink / raw = ${(ratio * 100).toFixed(0)}% (target ≥ 80%: ${ratio >= 0.8 ? 'met' : 'missed'}); ${(bytes / events.length).toFixed(0)} bytes per event on the topic`,
    ],
  };
}

async function timed(f: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
}

async function queryRows(ctx: BenchContext, client: ClickHouseClient, p: Params): Promise<{ rows: BenchRow[]; notes: string[]; sizes: unknown }> {
  const db = 'bench_month';
  await migrate(client, { database: db, retentionDays: 90, rollupRetentionDays: 400 });
  const end = Math.floor(Date.now() / 3_600_000) * 3_600_000;
  ctx.progress(`generating ${p.statsEvents.toLocaleString('en')} events over ${p.statsDays} days inside the engine`);
  const loadMs = await timed(() => insertVolume(client, db, { events: p.statsEvents, endMs: end, days: p.statsDays }));
  const sizes = await tableSizes(client, db);
  const app: FastifyInstance = Fastify();
  registerReadApi(app, { client, database: db, authenticate: (r) => (r.headers['x-tenant'] as string) ?? null, now: () => end });
  await app.ready();
  try {
    // Timeline: random messages of every tenant.
    const rs = await client.query({ query: `SELECT tenant, message_id FROM ${db}.message_index ORDER BY cityHash64(message_id, 'bench') LIMIT ${p.timelineLookups}`, format: 'JSONEachRow' });
    const sample = await rs.json<{ tenant: string; message_id: string }>();
    // Every round looks up every sampled message (and the floor as often), so each round gives
    // one p99 of each, and the row reports their median over the rounds like every other row.
    const timelineP99: number[] = [];
    const floorP99: number[] = [];
    const all: number[] = [];
    const allFloor: number[] = [];
    for (let round = 0; round < ctx.runs; round++) {
      const timeline: number[] = [];
      const floor: number[] = [];
      for (const m of sample) {
        floor.push(await timed(() => client.query({ query: 'SELECT 1', format: 'JSONEachRow' }).then((r) => r.json())));
        timeline.push(
          await timed(async () => {
            const res = await app.inject({ url: `/v1/messages/${encodeURIComponent(m.message_id)}`, headers: { 'x-tenant': m.tenant } });
            if (res.statusCode !== 200 || res.json().timeline.length < 4) throw new Error(`timeline of ${m.message_id}: ${res.statusCode}`);
          }),
        );
      }
      timelineP99.push(latencyPercentiles(timeline).p99);
      floorP99.push(latencyPercentiles(floor).p99);
      all.push(...timeline);
      allFloor.push(...floor);
    }
    const t = latencyPercentiles(all);
    const f = latencyPercentiles(allFloor);
    const timelineRow = benchRow({
      group: `read API over ${p.statsEvents.toLocaleString('en')} events / ${p.statsDays} days`,
      name: `GET /v1/messages/:id, ${sample.length} random messages (p99 of each of ${ctx.runs} rounds)`,
      unit: 'ms',
      better: 'lower',
      value: summarize(timelineP99),
      baseline: { name: 'SELECT 1 through the same client (p99 of each round)', unit: 'ms', value: summarize(floorP99) },
      target: { op: '<', value: 50 },
    });

    // Stats: the month, per day, without and with a group, against the raw table.
    const from = new Date(end - p.statsDays * DAY).toISOString();
    const to = new Date(end).toISOString();
    const statsMs: number[] = [];
    const groupedMs: number[] = [];
    const rawMs: number[] = [];
    // A timing of an error answer is no timing: every answer must be a 200 with data in it.
    const stats = async (url: string, tenant: string): Promise<void> => {
      const res = await app.inject({ url, headers: { 'x-tenant': tenant } });
      const body = res.statusCode === 200 ? res.json() : undefined;
      if (!body || !Array.isArray(body.groups) || body.groups.length === 0) throw new Error(`${url} for ${tenant}: ${res.statusCode} ${res.body.slice(0, 300)}`);
    };
    for (let i = 0; i < p.statsQueries; i++) {
      const tenant = ['acme', 'globex', 'initech'][i % 3];
      statsMs.push(await timed(() => stats(`/v1/stats?from=${from}&to=${to}&interval=1d`, tenant)));
      groupedMs.push(await timed(() => stats(`/v1/stats?from=${from}&to=${to}&interval=1d&groupBy=domain`, tenant)));
      rawMs.push(
        await timed(() =>
          client
            .query({
              query: `SELECT toStartOfDay(at) AS d, type, count() AS n, quantilesTDigestIf(0.5, 0.9, 0.95, 0.99)(toFloat64(dateDiff('millisecond', assumeNotNull(accepted_at), at)), type = 'sent' AND accepted_at IS NOT NULL) AS q
                      FROM ${db}.events WHERE tenant = {tenant:String} AND at >= fromUnixTimestamp64Milli({from:Int64}) AND at < fromUnixTimestamp64Milli({to:Int64}) GROUP BY d, type`,
              query_params: { tenant, from: end - p.statsDays * DAY, to: end },
              format: 'JSONEachRow',
            })
            .then((r) => r.json()),
        ),
      );
    }
    const rawBaseline = { name: 'the same figures from the raw events table', unit: 'ms', value: summarize(rawMs) };
    const statsRows = [
      benchRow({ group: timelineRow.group, name: `GET /v1/stats ${p.statsDays} d, interval=1d (median of ${p.statsQueries})`, unit: 'ms', better: 'lower', value: summarize(statsMs), baseline: rawBaseline, target: { op: '<', value: 500 } }),
      benchRow({ group: timelineRow.group, name: `GET /v1/stats ${p.statsDays} d, interval=1d, groupBy=domain (median)`, unit: 'ms', better: 'lower', value: summarize(groupedMs), baseline: rawBaseline, target: { op: '<', value: 500 } }),
    ];
    const sizeLine = sizes.map((s) => `${s.table} ${s.rows.toLocaleString('en')} rows / ${(s.bytes / MB).toFixed(1)} MB`).join('; ');
    return {
      rows: [timelineRow, ...statsRows],
      notes: [
        `data used for the read API: ${p.statsEvents.toLocaleString('en')} events over ${p.statsDays} days, 3 tenants, loaded in ${(loadMs / 1000).toFixed(0)} s; ${sizeLine}`,
        `timeline latency ms: p50 ${t.p50.toFixed(1)}, p95 ${t.p95.toFixed(1)}, p99 ${t.p99.toFixed(1)}, max ${t.max.toFixed(1)} (floor p99 ${f.p99.toFixed(1)})`,
      ],
      sizes,
    };
  } finally {
    await app.close();
    await client.command({ query: `DROP DATABASE IF EXISTS ${db} SYNC` });
  }
}

async function run(ctx: BenchContext): Promise<SuiteResult> {
  const p = ctx.quick ? QUICK : process.env.POSTLINE_BENCH_ANALYTICS_FULL === '1' ? FULL : DEFAULT;
  const broker = await startBrokerTarget('child-process', { dataDir: path.join(ctx.tmpDir, 'broker') });
  const { client } = await openClickHouse({ url: '', user: '', password: '', dataDir: path.join(ctx.tmpDir, 'chdb'), requestTimeoutMs: 600_000 });
  const rows: BenchRow[] = [];
  const notes: string[] = [];
  const failures: string[] = [];
  const details: Record<string, unknown> = {};
  try {
    for (const [name, part] of [
      ['sink', () => sinkRows(ctx, client, broker, p)],
      ['read API', () => queryRows(ctx, client, p)],
    ] as const) {
      if (ctx.signal.aborted) {
        failures.push(`${name}: skipped, the suite's time limit passed`);
        continue;
      }
      try {
        const r = await part();
        rows.push(...r.rows);
        notes.push(...r.notes);
        if ('sizes' in r) details.sizes = r.sizes;
      } catch (err) {
        failures.push(`${name}: ${(err as Error).stack ?? err}`);
      }
    }
  } finally {
    await withTimeout(client.close(), 30_000, 'closing the engine').catch(() => undefined);
    await broker.close();
  }
  notes.push(`full size: POSTLINE_BENCH_ANALYTICS_FULL=1 npm run bench -- analytics (1,000,000 events through the sink)`);
  return { rows, params: { ...p, engine: 'chDB (in-process ClickHouse)', broker: 'postline broker, child process' }, notes, details, failures };
}

export const suite: BenchSuite = {
  name: 'analytics',
  description: 'ClickHouse sink throughput against raw inserts; timeline and stats latency over a month of events',
  timeLimitMs: { full: process.env.POSTLINE_BENCH_ANALYTICS_FULL === '1' ? 1_200_000 : 600_000, quick: 180_000 },
  run,
};
