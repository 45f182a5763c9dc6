/**
 * Turns the broker benchmark's runs into table rows: each workload is run `ctx.runs` times,
 * interleaved with its raw-disk baseline, and reported as median/min/max with the ratio, plus
 * the CPU each side used (the evidence for "who is the bottleneck").
 */
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import { benchRow, type BenchContext, type BenchRow } from './bench-suite.js';
import { latencyPercentiles, median, summarize, type LatencyPercentiles, type Summary } from './bench-stats.js';
import { interleave, type Interleaved } from './bench-timing.js';
import { interferenceWarnings } from './machine-load.js';
import { rawAppendFsync, rawPacedAppendLatency, rawSequentialRead, type RawThroughputRun } from './disk-baselines.js';
import { consumeThroughput, createTopic, makeMessages, pacedProduceLatency, produceThroughput, type LatencyRun, type ThroughputRun } from './kafka-workloads.js';
import { encodeProduceFrame, preEncodedLatency, preEncodedThroughput } from './pre-encoded-producer.js';
import type { OpenLoopResult } from './load-shapes.js';
import type { BrokerTarget } from './broker-targets.js';

export type ClientKind = 'kafkajs' | 'pre-encoded';

export interface BrokerBenchParams {
  recordsPerBatch: number;
  /** Batches per produce run, by record size in bytes. */
  batchesPerRun: Record<number, number>;
  /** Produce sends in flight at once. */
  inFlight: number;
  runTimeLimitMs: number;
  throughputTarget: number;
  /** `recordsPerSend`: the request shapes measured, e.g. [1, 5] (5 per request = 1,000 requests/s at 5,000 rec/s). */
  latency: { rate: number; durationMs: number; recordsPerSend: number[]; valueBytes: number; p99TargetMs: number };
}

/** One row group: a broker started one way, driven by one client. */
export interface RowGroup {
  label: string;
  broker: BrokerTarget;
  client: ClientKind;
  kafka: Kafka;
}

/** What the suite keeps beside the rows: per-run numbers and CPU lines for the notes. */
export interface RowDetails {
  runs: Record<string, unknown>;
  cpu: string[];
}

const kb = (size: number): string => `${size / 1024} KB`;
const perSecond = (r: { records: number; seconds: number }): number => r.records / r.seconds;
const mbPerSecond = (r: { bytes: number; seconds: number }): number => r.bytes / r.seconds / 1e6;

function truncation(runs: Array<{ truncated: boolean; records: number }>): string[] {
  return runs.flatMap((r, i) => (r.truncated ? [`run ${i + 1} stopped at its time limit after ${r.records} records`] : []));
}

function cpuLine(label: string, runs: Array<Pick<ThroughputRun, 'records' | 'seconds' | 'clientCpuSeconds' | 'brokerCpuSeconds'>>): string {
  const us = (cpu: number, r: { records: number }): number => (cpu / r.records) * 1e6;
  const client = median(runs.map((r) => us(r.clientCpuSeconds, r)));
  const clientCores = median(runs.map((r) => r.clientCpuSeconds / r.seconds));
  const own = runs.every((r) => r.brokerCpuSeconds === null);
  const side = own ? 'bench process (client + broker)' : 'client';
  let line = `${label}: ${side} ${client.toFixed(1)} µs CPU/record (${clientCores.toFixed(2)} cores)`;
  if (!own) {
    const broker = median(runs.map((r) => us(r.brokerCpuSeconds ?? Number.NaN, r)));
    const brokerCores = median(runs.map((r) => (r.brokerCpuSeconds ?? Number.NaN) / r.seconds));
    line += `, broker ${broker.toFixed(1)} µs CPU/record (${brokerCores.toFixed(2)} cores)`;
  }
  return line;
}

/** Produce throughput rows (and, for kafkajs, consume rows reading what was produced). */
export async function throughputRows(ctx: BenchContext, g: RowGroup, size: number, p: BrokerBenchParams, details: RowDetails): Promise<BenchRow[]> {
  const batches = p.batchesPerRun[size];
  const payloads = Array.from({ length: 16 }, () => randomBytes(size));
  const messages = makeMessages(p.recordsPerBatch, payloads);
  const maxBatchBytes = Math.max(1 << 20, 2 * p.recordsPerBatch * (size + 64));
  const topics: string[] = [];
  const rawFile = path.join(ctx.tmpDir, `raw-append-${size}.dat`);
  // The baseline writes the very bytes the broker stores: the record batch as kafkajs encodes it.
  const frame = await encodeProduceFrame('raw', messages);
  ctx.progress(`${g.label}: produce ${kb(size)} × ${batches} batches`);
  const produce = await interleave(
    ctx.runs,
    async () => rawAppendFsync(rawFile, frame, p.recordsPerBatch, batches, p.runTimeLimitMs, ctx.signal),
    async (run) => {
      const topic = `bench-produce-${size}-${g.broker.mode}-${g.client}-${run}`;
      topics.push(topic);
      await createTopic(g.kafka, topic, maxBatchBytes);
      const o = { topic, batches, inFlight: p.inFlight, timeLimitMs: p.runTimeLimitMs, signal: ctx.signal, brokerCpu: () => g.broker.cpuSeconds() };
      return g.client === 'kafkajs' ? produceThroughput(g.kafka, { ...o, batch: messages }) : preEncodedThroughput(g.broker.bootstrap, { ...o, frame: await encodeProduceFrame(topic, messages), records: p.recordsPerBatch, bytes: p.recordsPerBatch * size });
    },
    () => g.broker.cpuSeconds(),
  );
  const name = `produce ${kb(size)}, ${p.recordsPerBatch.toLocaleString('en-US')}/batch, acks=-1`;
  details.runs[`${g.label} / ${name}`] = produce;
  details.cpu.push(cpuLine(`${name} [${g.label}]`, produce.measured));
  const rows = [throughputRow(g.label, name, produce, 'raw append + fdatasync per batch', size === 1024 ? p.throughputTarget : undefined)];
  if (g.client !== 'kafkajs') return rows;

  ctx.progress(`${g.label}: consume ${kb(size)}`);
  const consume = await interleave(
    ctx.runs,
    async () => rawSequentialRead(rawFile, frame.length / p.recordsPerBatch, 1 << 20, p.runTimeLimitMs, ctx.signal),
    async (run) => consumeThroughput(g.kafka, { topic: topics[run], records: batches * p.recordsPerBatch, timeLimitMs: p.runTimeLimitMs, signal: ctx.signal, brokerCpu: () => g.broker.cpuSeconds() }),
    () => g.broker.cpuSeconds(),
  );
  const cname = `consume ${kb(size)} from the beginning (eachBatch)`;
  details.runs[`${g.label} / ${cname}`] = consume;
  details.cpu.push(cpuLine(`${cname} [${g.label}]`, consume.measured));
  rows.push(throughputRow(g.label, cname, consume, 'raw sequential read, 1 MiB reads', size === 1024 ? p.throughputTarget : undefined));
  return rows;
}

function throughputRow(group: string, name: string, r: Interleaved<RawThroughputRun, ThroughputRun>, baselineName: string, target?: number): BenchRow {
  const { measured: runs, baseline } = r;
  return benchRow({
    group,
    name,
    unit: 'rec/s',
    better: 'higher',
    value: summarize(runs.map(perSecond)),
    also: [{ unit: 'MB/s', value: summarize(runs.map(mbPerSecond)) }],
    baseline: { name: baselineName, unit: 'rec/s', value: summarize(baseline.map(perSecond)) },
    target: target === undefined ? undefined : { op: '>=', value: target },
    warnings: [...truncation(runs), ...truncation(baseline).map((w) => `baseline ${w}`), ...interferenceWarnings(r.foreignCores)],
  });
}

/** Produce latency at a fixed rate with acks=-1, for each request shape: p50 and p99 rows, each against the raw disk's. */
export async function latencyRows(ctx: BenchContext, g: RowGroup, p: BrokerBenchParams, details: RowDetails): Promise<BenchRow[]> {
  const L = p.latency;
  const value = randomBytes(L.valueBytes);
  ctx.progress(`${g.label}: produce latency at ${L.rate} rec/s for ${L.durationMs / 1000} s, ${L.recordsPerSend.join(' and ')} record(s)/request`);
  const runs = await interleave(
    ctx.runs,
    async (run) => rawPacedAppendLatency(path.join(ctx.tmpDir, `raw-paced-${run}.dat`), value, L.rate, L.durationMs, ctx.signal),
    async (run) => {
      const out: LatencyRun[] = [];
      for (const perSend of L.recordsPerSend) out.push(await pacedRun(ctx, g, `bench-latency-${g.broker.mode}-${g.client}-${perSend}-${run}`, perSend, value, p));
      return out;
    },
    () => g.broker.cpuSeconds(),
  );
  const baseline = runs.baseline.map((r) => latencyPercentiles(r.latenciesMs));
  const rows: BenchRow[] = [];
  L.recordsPerSend.forEach((perSend, shape) => {
    const shapeRuns = runs.measured.map((m) => m[shape]);
    const measured = shapeRuns.map((r) => latencyPercentiles(r.latenciesMs));
    const label = perSend === 1 ? '1 record/request' : `${perSend} records/request`;
    const name = (k: string): string => `produce latency ${k} at ${L.rate.toLocaleString('en-US')} rec/s, ${label}`;
    details.runs[`${g.label} / ${name('percentiles')}`] = { measured, baseline, achievedRates: shapeRuns.map((r) => r.achievedRate), errors: shapeRuns.map((r) => r.errors) };
    details.cpu.push(
      cpuLine(
        `produce at ${L.rate} rec/s, ${label} [${g.label}]`,
        shapeRuns.map((r) => ({ records: r.latenciesMs.length * perSend, seconds: L.durationMs / 1000, clientCpuSeconds: r.clientCpuSeconds, brokerCpuSeconds: r.brokerCpuSeconds })),
      ),
    );
    const pick = (runs: LatencyPercentiles[], k: keyof LatencyPercentiles): Summary => summarize(runs.map((m) => m[k]));
    const base = 'raw append + fdatasync per 1 ms tick';
    rows.push(
      benchRow({
        group: g.label,
        name: name('p50'),
        unit: 'ms',
        better: 'lower',
        value: pick(measured, 'p50'),
        also: [{ label: 'offered', unit: 'rec/s', value: summarize(shapeRuns.map((r) => r.achievedRate)) }],
        baseline: { name: base, unit: 'ms', value: pick(baseline, 'p50') },
        warnings: [...latencyWarnings(shapeRuns, L.rate), ...interferenceWarnings(runs.foreignCores)],
      }),
      benchRow({
        group: g.label,
        name: name('p99'),
        unit: 'ms',
        better: 'lower',
        value: pick(measured, 'p99'),
        also: [
          { label: 'p95', unit: 'ms', value: pick(measured, 'p95') },
          { label: 'max', unit: 'ms', value: pick(measured, 'max') },
        ],
        baseline: { name: base, unit: 'ms', value: pick(baseline, 'p99') },
        target: { op: '<', value: L.p99TargetMs },
      }),
    );
  });
  return rows;
}

async function pacedRun(ctx: BenchContext, g: RowGroup, topic: string, perSend: number, value: Buffer, p: BrokerBenchParams): Promise<LatencyRun> {
  await createTopic(g.kafka, topic, 1 << 20);
  const o = { topic, rate: p.latency.rate, durationMs: p.latency.durationMs, recordsPerSend: perSend, value, signal: ctx.signal, brokerCpu: () => g.broker.cpuSeconds() };
  if (g.client === 'kafkajs') return pacedProduceLatency(g.kafka, o);
  return preEncodedLatency(g.broker.bootstrap, { ...o, frame: await encodeProduceFrame(topic, makeMessages(perSend, [value])) });
}

function latencyWarnings(runs: OpenLoopResult[], rate: number): string[] {
  return runs.flatMap((r, i) => {
    const w: string[] = [];
    if (r.achievedRate < rate * 0.95) w.push(`run ${i + 1} offered only ${Math.round(r.achievedRate)} rec/s`);
    if (r.truncated) w.push(`run ${i + 1} stopped early (backlog or time limit): ${r.latenciesMs.length} acks`);
    if (r.errors) w.push(`run ${i + 1}: ${r.errors} sends failed (${r.firstError})`);
    return w;
  });
}
