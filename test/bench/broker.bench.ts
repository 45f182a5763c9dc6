/**
 * Broker benchmark: kafkajs produce and consume throughput (1 KB and 10 KB records, batches of
 * 1,000, acks=-1) and acks=-1 produce latency at a steady 5,000 records/s, each beside the raw
 * limit of the same disk measured in the same run (sequential append + fdatasync per batch,
 * sequential read, paced append + fdatasync).
 *
 * The broker runs two ways: as its own process (`postline broker`), so client and broker each
 * have a core, and inside the bench process, where they share one event loop as they do under
 * `npm start`. A third group drives the child broker with pre-encoded requests, which costs the
 * client next to nothing: the gap between it and the kafkajs rows is what kafkajs costs.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { BenchContext, BenchRow, BenchSuite, SuiteResult } from './bench-suite.js';
import { startBrokerTarget, type BrokerMode } from './broker-targets.js';
import { benchKafka } from './kafka-workloads.js';
import { latencyRows, throughputRows, type BrokerBenchParams, type ClientKind, type RowDetails } from './broker-bench-rows.js';
import { kafkajsEncodeRows } from './kafkajs-ceiling.js';
import { profileBrokerWorkloads } from './broker-profiling.js';

const FULL: BrokerBenchParams = {
  recordsPerBatch: 1000,
  batchesPerRun: { 1024: 100, 10240: 20 },
  inFlight: 4,
  runTimeLimitMs: 30_000,
  throughputTarget: 50_000,
  latency: { rate: 5000, durationMs: 5000, recordsPerSend: [1, 5], valueBytes: 1024, p99TargetMs: 20 },
};

const QUICK: BrokerBenchParams = {
  ...FULL,
  batchesPerRun: { 1024: 10, 10240: 2 },
  runTimeLimitMs: 10_000,
  latency: { ...FULL.latency, durationMs: 1000 },
};

const RECORD_SIZES = [1024, 10240];

interface GroupSpec {
  label: string;
  mode: BrokerMode;
  client: ClientKind;
}

const GROUPS: GroupSpec[] = [
  { label: 'broker in a child process · kafkajs client', mode: 'child-process', client: 'kafkajs' },
  { label: 'broker in the bench process · kafkajs client (one event loop for both)', mode: 'in-process', client: 'kafkajs' },
  { label: 'broker in a child process · pre-encoded requests (client cost ≈ 0)', mode: 'child-process', client: 'pre-encoded' },
];

async function runGroup(ctx: BenchContext, spec: GroupSpec, index: number, p: BrokerBenchParams, details: RowDetails): Promise<BenchRow[]> {
  const dataDir = path.join(ctx.tmpDir, `broker-${index}`);
  const broker = await startBrokerTarget(spec.mode, { dataDir });
  const g = { label: spec.label, broker, client: spec.client, kafka: benchKafka(broker.bootstrap, `bench-${spec.mode}`) };
  const rows: BenchRow[] = [];
  try {
    for (const size of RECORD_SIZES) rows.push(...(await throughputRows(ctx, g, size, p, details)));
    rows.push(...(await latencyRows(ctx, g, p, details)));
  } finally {
    await broker.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
  return rows;
}

async function run(ctx: BenchContext): Promise<SuiteResult> {
  const p = ctx.quick ? QUICK : FULL;
  const details: RowDetails = { runs: {}, cpu: [] };
  const failures: string[] = [];
  // First: it is short and needs no broker, so a suite that runs out of time still has it.
  const rows: BenchRow[] = await kafkajsEncodeRows(ctx, 'kafkajs alone (no broker, no network)', 1024, p.recordsPerBatch, ctx.quick ? 20 : 100);
  for (const [i, spec] of GROUPS.entries()) {
    if (ctx.signal.aborted) {
      failures.push(`${spec.label}: skipped, the suite's time limit passed`);
      continue;
    }
    try {
      rows.push(...(await runGroup(ctx, spec, i, p, details)));
    } catch (err) {
      failures.push(`${spec.label}: ${(err as Error).stack ?? err}`);
    }
  }
  const notes = ['CPU per record (median run; "cores" = CPU seconds / wall seconds):', ...details.cpu.map((l) => `  ${l}`)];
  if (ctx.profile) notes.push(...(await profileBrokerWorkloads(ctx, p)));
  return { rows, params: { ...p, recordSizes: RECORD_SIZES, groups: GROUPS, tmpdir: ctx.tmpDir }, notes, details: details.runs, failures };
}

export const suite: BenchSuite = {
  name: 'broker',
  description: 'embedded broker: kafkajs produce/consume throughput and acks=-1 latency, against the raw disk',
  timeLimitMs: { full: 280_000, quick: 90_000, profile: 90_000 },
  run,
};
