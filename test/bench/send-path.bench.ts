/**
 * Send-path benchmark (issue 3): throughput of the pipeline as it runs in production — the
 * broker, ingest, renderer and dispatcher each their own process, configured by POSTLINE_*
 * variables only, an `smtp-server` sink in its own process as the relay (with smtp-server's
 * 100 ms wait before the greeting) — on ~3 KB HTML + text emails from a realistic template, no
 * DKIM. Every row is read against a raw-library baseline measured in the same run, each in a
 * fresh process of its own:
 *
 * - render stage alone vs Handlebars + MailComposer of the same inputs (target ≥ 80%);
 * - dispatch stage alone vs nodemailer pooled sending of the same MIME to the same sink
 *   (target ≥ 80%); the same runs vs a new nodemailer connection per message (target ≥ 5×);
 * - the dispatcher at its default settings vs pooled sending with its connection count;
 * - end to end, accepted → 250 (target ≥ 1,500 emails/s), fed through POST /v1/emails/batch and
 *   produced straight to email.requested.
 *
 * Peak RSS and CPU of every process are sampled per step and printed under the table, as
 * "where the CPU goes". `--profile` also CPU-profiles the stage processes and summarises the
 * end-to-end part of each profile.
 *
 * Stage processes run with the flags production uses (shared/node-flags.ts);
 * POSTLINE_BENCH_SEND_PATH_NODE_ARGS adds more (later flags win, e.g.
 * `--max-semi-space-size=16` to see the default), to compare runtime settings without changing code.
 *
 * Sizes: the default run moves 10,000 messages per stage run and 10,000 per end-to-end run
 * (about five minutes on a 2-core machine); POSTLINE_BENCH_SEND_PATH_FULL=1 uses the issue's
 * 50,000 end to end (and 20,000 per stage run); `--quick` is a smoke check.
 */
import path from 'node:path';
import type { BenchContext, BenchRow, BenchSuite, SuiteResult } from './bench-suite.js';
import { median } from './bench-stats.js';
import { defaultsRows, endToEndRows, isolationRows, TUNED_ENV, type GroupContext, type SendPathParams } from './send-path-groups.js';
import { killAll } from './send-path-processes.js';
import { profileNotes } from './send-path-profiles.js';
import { ProcessSampler } from './send-path-process-sampler.js';
import { PARTITIONS, Rig } from './send-path-rig.js';
import { startSinkProcess, type SinkProcess } from './send-path-sink.js';
import { STAGE_NODE_FLAGS } from '../../shared/node-flags.js';

const FULL_RUN = process.env.POSTLINE_BENCH_SEND_PATH_FULL === '1';
/** Extra node flags for every stage process (after the production ones), to try runtime settings without touching code. */
const STAGE_NODE_ARGS = (process.env.POSTLINE_BENCH_SEND_PATH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
/** Extra POSTLINE_* settings for every stage, as a JSON object (the bench passes none of its own shell's POSTLINE_* on). */
const STAGE_ENV = stageEnvOf(process.env.POSTLINE_BENCH_SEND_PATH_STAGE_ENV);

function stageEnvOf(json: string | undefined): Record<string, string> {
  if (!json) return {};
  const parsed: unknown = JSON.parse(json);
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed) || Object.entries(parsed).some(([k, v]) => !k.startsWith('POSTLINE_') || typeof v !== 'string')) {
    throw new Error('POSTLINE_BENCH_SEND_PATH_STAGE_ENV: a JSON object of POSTLINE_* names to string values');
  }
  return parsed as Record<string, string>;
}

const DEFAULT: SendPathParams = {
  stageMessages: 10_000,
  defaultsMessages: 5_000,
  e2eMessages: 10_000,
  newConnMessages: 2_000,
  newConnMs: 5_000,
  batchSize: 100,
  batchesInFlight: 4,
  runTimeoutMs: 120_000,
};
const FULL: SendPathParams = { ...DEFAULT, stageMessages: 20_000, e2eMessages: 50_000, runTimeoutMs: 300_000 };
const QUICK: SendPathParams = { ...DEFAULT, stageMessages: 2_000, defaultsMessages: 1_000, e2eMessages: 2_000, newConnMessages: 500, newConnMs: 2_000, runTimeoutMs: 60_000 };

/** Process labels in the order the notes list them. */
const LABELS = ['bench', 'broker', 'ingest', 'renderer', 'dispatcher', 'sink', 'raw render', 'kafkajs renderer', 'raw smtp', 'kafkajs dispatcher', 'raw smtp new-conn'];

/** "render stage (10,000 msgs): renderer 0.98 cores, 0.92 ms/msg, 281 MB · …" from the median of each figure over the runs. */
function usageNotes(g: GroupContext): string[] {
  const lines = [
    'where the CPU goes, per step (median over runs; cores = CPU s / wall s of the step, from the stage being ready; ms = CPU ms per message; MB = peak RSS; ' +
      'a raw baseline process counts its sending/rendering only, not its start-up):',
  ];
  const peaks = new Map<string, number>();
  for (const [name, runs] of g.usage) {
    const parts: string[] = [];
    for (const label of LABELS) {
      const got = runs.map((r) => ({ u: r.report.byLabel[label], wall: r.report.wallSeconds, messages: r.messages })).filter((x) => x.u);
      if (got.length === 0) continue;
      const rss = Math.max(...got.map((x) => x.u.peakRssMb));
      peaks.set(label, Math.max(peaks.get(label) ?? 0, rss));
      if (median(got.map((x) => x.u.cpuSeconds)) < 0.01) continue;
      const cores = median(got.map((x) => x.u.cpuSeconds / (x.u.wallSeconds ?? x.wall)));
      const msPerMessage = median(got.map((x) => (x.u.cpuSeconds * 1000) / x.messages));
      parts.push(`${label} ${cores.toFixed(2)} cores, ${msPerMessage.toFixed(2)} ms/msg, ${rss.toFixed(0)} MB`);
    }
    lines.push(`  ${name} (${median(runs.map((r) => r.messages)).toLocaleString('en')} msgs): ${parts.join(' · ')}`);
  }
  lines.push(`peak RSS per process over the suite: ${LABELS.filter((l) => peaks.has(l)).map((l) => `${l} ${peaks.get(l)!.toFixed(0)} MB`).join(' · ')}`);
  return lines;
}

async function run(ctx: BenchContext): Promise<SuiteResult> {
  const p = ctx.quick ? QUICK : FULL_RUN ? FULL : DEFAULT;
  const sampler = new ProcessSampler().start();
  sampler.watch('bench', process.pid);
  const profileDir = path.join(ctx.outDir, `profiles-send-path-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  const rows: BenchRow[] = [];
  const failures: string[] = [];
  let sink: SinkProcess | undefined;
  let rig: Rig | undefined;
  const g = { ctx, p, sampler, usage: new Map(), details: {}, notes: [] } as unknown as GroupContext;
  try {
    sink = await startSinkProcess();
    sampler.watch('sink', sink.pid);
    const profileArgs = ctx.profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
    rig = await Rig.start({ dir: ctx.tmpDir, sink, sampler, stageNodeArgs: [...STAGE_NODE_ARGS, ...profileArgs], brokerNodeArgs: profileArgs, stageEnv: STAGE_ENV });
    Object.assign(g, { rig, sink });
    for (const [label, group] of [
      ['stage isolation', isolationRows],
      ['dispatcher at defaults', defaultsRows],
      ['end to end', endToEndRows],
    ] as const) {
      if (ctx.signal.aborted) {
        failures.push(`${label}: skipped, the suite's time limit passed`);
        continue;
      }
      try {
        rows.push(...(await group(g)));
      } catch (err) {
        const stages = [...rig.lastLines].map(([s, t]) => `--- ${s} (last lines)\n${t}`).join('\n');
        failures.push(`${label}: ${(err as Error).stack ?? err}${stages ? `\n${stages}` : ''}`);
      }
    }
  } catch (err) {
    failures.push(`set-up: ${(err as Error).stack ?? err}`);
  } finally {
    await rig?.close().catch((err: Error) => failures.push(`closing the pipeline: ${err.message}`));
    await sink?.close();
    await killAll();
    sampler.stop();
  }
  const notes = [
    `settings: dispatcher POSTLINE_DISPATCHER_CONCURRENCY_TRANSACTIONAL=${TUNED_ENV.POSTLINE_DISPATCHER_CONCURRENCY_TRANSACTIONAL}, ` +
      `POSTLINE_DISPATCHER_FLEET_MAX_CONNECTIONS_PER_HOST=${TUNED_ENV.POSTLINE_DISPATCHER_FLEET_MAX_CONNECTIONS_PER_HOST} (defaults 20 and 20) except in the defaults group; ` +
      `everything else at its default (renderer concurrency 64, log level info, ${PARTITIONS} partitions); sink: smtp-server in its own process, 100 ms before its greeting; ` +
      `stage node flags: ${[...STAGE_NODE_FLAGS, ...STAGE_NODE_ARGS].join(' ')} (production's, plus POSTLINE_BENCH_SEND_PATH_NODE_ARGS)`,
    'targets: render and dispatch stage ≥ 80% of their baseline median, connection reuse ≥ 5× (both shown as the absolute figure), end to end ≥ 1,500 emails/s',
    ...g.notes,
    ...(g.usage.size ? usageNotes(g) : []),
    ...(ctx.profile && rig ? profileNotes(profileDir, rig, g.e2eWindow) : []),
  ];
  return { rows, params: { ...p, tunedDispatcher: TUNED_ENV, partitions: PARTITIONS, full: FULL_RUN, stageNodeArgs: STAGE_NODE_ARGS, stageEnv: STAGE_ENV }, notes, details: g.details, failures };
}

export const suite: BenchSuite = {
  name: 'send-path',
  description: 'ingest → renderer → dispatcher → SMTP throughput, each stage its own process, against raw Handlebars/MailComposer/nodemailer',
  timeLimitMs: { full: FULL_RUN ? 1_500_000 : 480_000, quick: 180_000, profile: 60_000 },
  run,
};
