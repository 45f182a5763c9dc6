/**
 * The embedded default as users run it: the real `postline start` (broker, every stage,
 * analytics on, the default partition count), delivering to the bench's SMTP sink as its relay.
 * Each run starts a fresh `postline start` and measures, beside a baseline from the same run:
 *
 * - start-up: spawn → "Postline is running", beside `postline --help` (loading the CLI alone);
 * - first message after start (POST → 250 at the sink), and single-message latency (one at a
 *   time, 10/s) timed twice per message: accepted → 250 (from the API's 202 to the sink's 250,
 *   the pipeline's own queueing: the issue's targets) and POST → 250 (what the client waits in
 *   all, the API's durable acceptance included), beside the same message sent straight to the
 *   sink by a pooled nodemailer transport (the floor);
 * - idle CPU of every Postline process summed, nothing sent, beside the idle sink process;
 * - memory: PSS summed over every process, idle and at full load, beside the sink process;
 * - throughput and CPU per message: n messages through POST /v1/emails/batch (500 a request, 6
 *   in flight), beside the raw-library limit: Handlebars + MailComposer and nodemailer's pool
 *   run alone on the same messages, their CPU per message added up, over this machine's cores.
 *   A process `postline start` adds under load (its second renderer) counts from its spawn;
 * - critical messages during the batch: 20 sent one by one (one per 200 ms from the batch's
 *   start) while the batch is accepted and delivered, POST → 250 at the sink, p50 and the slowest,
 *   beside the single messages sent with no batch (a password reset during a campaign);
 * - CPU per message at 10/s: every process's CPU over the single-message window (its idle share
 *   included) per message sent in it, beside the CPU per message under the batch: what a message
 *   costs when it travels alone (a Kafka request and an fsync per hop for one record).
 *
 * Sizes: 20,000 messages, 20 s idle and latency windows by default; POSTLINE_BENCH_EMBEDDED_FULL=1
 * uses 60 s windows (the issue's); --quick 2,000 messages and 5 s windows.
 * POSTLINE_BENCH_EMBEDDED_MESSAGES sets the throughput batch's size (a longer backlog shows what
 * the second renderer gains once it has joined).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import nodemailer from 'nodemailer';
import { benchRow, type BenchContext, type BenchRow, type BenchSuite, type SuiteResult } from './bench-suite.js';
import { latencyPercentiles, median, summarize, type LatencyPercentiles } from './bench-stats.js';
import { openLoop } from './load-shapes.js';
import { ProcessSampler } from './send-path-process-sampler.js';
import { epochMs, killAll } from './send-path-processes.js';
import { rawPooledSmtp, rawRender } from './send-path-raw-baselines.js';
import { startSinkProcess, type SinkProcess } from './send-path-sink.js';
import { endToEndHttp } from './send-path-stages.js';
import { FROM, ingestBody, rawRenderer, writeTemplatesDir } from './send-path-workload.js';
import { descendants, processLabel, pssMb, startLauncher, strayPostlineProcesses, warmHttpClient, type Launcher } from './embedded-launcher.js';
import { hrtimeUs, type ProfileWindow } from './cpu-profile-summary.js';
import { busyBreakdown } from './send-path-profiles.js';

interface Params {
  messages: number;
  idleMs: number;
  latencyMs: number;
  /** Single messages per second in the latency window. */
  latencyRate: number;
  /** Wait after start-up and after the first message before the idle window opens. */
  settleMs: number;
  /** Messages each raw-library baseline runs (enough for a stable CPU per message). */
  rawMessages: number;
}

const DEFAULT: Params = { messages: 20_000, idleMs: 20_000, latencyMs: 20_000, latencyRate: 10, settleMs: 5_000, rawMessages: 5_000 };
const FULL: Params = { ...DEFAULT, idleMs: 60_000, latencyMs: 60_000 };
const QUICK: Params = { messages: 2_000, idleMs: 5_000, latencyMs: 5_000, latencyRate: 10, settleMs: 2_000, rawMessages: 1_000 };

interface RunFigures {
  startupMs: number;
  /** Critical messages sent one by one while the batch is accepted and delivered, POST → 250 at the sink. */
  criticalDuringBatch: LatencyPercentiles;
  cliMs: number;
  firstMessageMs: number;
  /** Single messages, POST sent → 250 at the sink. */
  latency: LatencyPercentiles;
  /** The same messages, 202 received → 250 at the sink. */
  acceptedLatency: LatencyPercentiles;
  floor: LatencyPercentiles;
  idleCores: number;
  sinkIdleCores: number;
  idlePssMb: Record<string, number>;
  /** Each process's peak PSS over the batch (their moments differ). */
  loadPssMb: Record<string, number>;
  /** The peak over the batch of every process's PSS summed, all sampled in the same second. */
  loadPssPeakSumMb: number;
  sinkPssMb: number;
  throughput: number;
  cpuMsPerMessage: number;
  /** CPU of every Postline process over the single-message window, per message sent in it. */
  singleCpuMsPerMessage: number;
  cpuByLabel: Record<string, number>;
  /** The single-message window's CPU per message by process (its idle share included). */
  singleCpuByLabel: Record<string, number>;
  /** The raw libraries' CPU per message: the mean of their runs just before and just after the batch. */
  rawCpuMsPerMessage: RawCpu;
  /** The same, measured before and after the batch (how far the host's speed moved across it). */
  rawBracket: { before: RawCpu; after: RawCpu };
  rawLimit: number;
  /** With --profile: each process's busy time over the throughput window, by component and function. */
  profiles?: string[];
}

interface RawCpu {
  render: number;
  smtp: number;
}

/** The raw libraries' CPU per message (Handlebars + MailComposer; nodemailer's pool into the sink). */
async function rawCpuPerMessage(p: Params, tag: string, sink: SinkProcess, signal: AbortSignal): Promise<RawCpu> {
  const render = await rawRender({ tag, n: p.rawMessages, concurrency: 64, timeLimitMs: 120_000 });
  const smtp = await rawPooledSmtp(sink, { tag, n: p.rawMessages, concurrency: 20, maxConnections: 16, timeLimitMs: 120_000, signal });
  return { render: (render.cpuSeconds * 1000) / render.count, smtp: (smtp.cpuSeconds * 1000) / smtp.count };
}

/** Resolves when the sink reports `rcpt`'s arrival; the time is the sink's (epoch ms). */
class Arrivals {
  private readonly waiting = new Map<string, (at: number) => void>();
  arrived = (rcpt: string, at: number): void => {
    this.waiting.get(rcpt)?.(at);
    this.waiting.delete(rcpt);
  };
  expect(rcpt: string, timeoutMs = 30_000): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(rcpt);
        reject(new Error(`${rcpt} did not arrive within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(rcpt, (at) => {
        clearTimeout(timer);
        resolve(at);
      });
    });
  }
}

/**
 * Extra `postline start` options, e.g. POSTLINE_BENCH_EMBEDDED_ARGS=--process-per-stage to
 * measure the one-process-per-stage layout against the default (co-hosted) one.
 */
const LAUNCHER_ARGS = (process.env.POSTLINE_BENCH_EMBEDDED_ARGS ?? '').split(/\s+/).filter(Boolean);

/**
 * Extra configuration for the pipeline under test, e.g.
 * POSTLINE_BENCH_EMBEDDED_ENV="POSTLINE_KAFKA_PRODUCER_LINGER_MS=2" for an A/B of one setting (the
 * launcher otherwise starts from a clean environment, without the bench's own POSTLINE_*).
 */
const LAUNCHER_ENV: Record<string, string> = Object.fromEntries(
  (process.env.POSTLINE_BENCH_EMBEDDED_ENV ?? '')
    .split(/\s+/)
    .filter(Boolean)
    .map((kv) => {
      const at = kv.indexOf('=');
      if (at < 1) throw new Error(`POSTLINE_BENCH_EMBEDDED_ENV: "${kv}" is not NAME=VALUE`);
      return [kv.slice(0, at), kv.slice(at + 1)];
    }),
);

const pssSum = (byLabel: Record<string, number>): number => Object.values(byLabel).reduce((a, b) => a + b, 0);

/** PSS of every process of the launcher's tree, summed per label. */
/** `postline start`'s process tree: the launcher and every process below it. */
const treeOf = (launcher: Launcher): number[] => [launcher.pid, ...descendants(launcher.pid)];

function pssByLabel(pids: number[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const pid of pids) {
    const mb = pssMb(pid);
    if (Number.isFinite(mb)) out[processLabel(pid)] = (out[processLabel(pid)] ?? 0) + mb;
  }
  return out;
}

/** Critical messages the throughput window sends one by one beside its batch (a row of their latency). */
const CRITICAL_DURING_BATCH = 20;

async function sendOne(launcher: Launcher, rcpt: string, priority?: 'critical'): Promise<void> {
  const res = await fetch(`${launcher.ingestUrl}/v1/emails`, {
    method: 'POST',
    headers: { authorization: `Bearer ${launcher.apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ ...ingestBody('lat', 0), to: [rcpt], ...(priority ? { priority } : {}) }),
  });
  if (res.status !== 202) throw new Error(`POST /v1/emails answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
}

/**
 * `--profile`: every process `postline start` starts runs under `--cpu-prof` (its `--node-flags`;
 * the launcher itself does not); each profile is read over the throughput window only (start-up,
 * idle and latency windows left out).
 */
function profileSummaries(dir: string, pids: Map<number, string>, window: ProfileWindow): string[] {
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')) : [];
  const out = [`CPU profiles of every process of postline start (--cpu-prof; thread 0 is the main thread): ${dir}`];
  for (const [pid, label] of pids) {
    // Named CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile; thread 0 is the main thread.
    const file = files.find((f) => f.includes(`.${pid}.0.`));
    if (file) out.push(busyBreakdown(`${label} (pid ${pid}), throughput window`, path.join(dir, file), window, 15));
  }
  return out;
}

async function oneRun(ctx: BenchContext, p: Params, run: number, sink: SinkProcess, arrivals: Arrivals, templatesDir: string): Promise<RunFigures> {
  const sampler = new ProcessSampler(500).start();
  sampler.watch('sink', sink.pid);
  const cliMs = await timeCli();
  ctx.progress(`run ${run + 1}: starting postline start`);
  const profileDir = path.join(ctx.outDir, `profiles-embedded-${new Date().toISOString().replace(/[:.]/g, '-')}-run${run + 1}`);
  const profileArgs = ctx.profile ? [`--node-flags=--cpu-prof --cpu-prof-dir=${profileDir}`] : [];
  const launcher = await startLauncher({ relay: sink, env: { ...LAUNCHER_ENV, POSTLINE_RENDERER_TEMPLATES_DIR: templatesDir }, args: [...LAUNCHER_ARGS, ...profileArgs] });
  const pids = new Map<number, string>();
  let loadWindow: ProfileWindow | undefined;
  let figures: RunFigures;
  try {
    for (const pid of treeOf(launcher)) {
      pids.set(pid, processLabel(pid));
      sampler.watch(processLabel(pid), pid);
    }

    // The first message after start: the fleets are warm, nothing else has run through the stages
    // yet; the bench's own HTTP client is warmed first.
    await warmHttpClient(launcher);
    const t0 = epochMs();
    const firstAt = arrivals.expect(`lat.first.${run}@d0.example`);
    await sendOne(launcher, `lat.first.${run}@d0.example`);
    const firstMessageMs = (await firstAt) - t0;

    await sleep(p.settleMs);
    ctx.progress(`run ${run + 1}: idle for ${p.idleMs / 1000} s`);
    const idle = sampler.window();
    await sleep(p.idleMs);
    const idleUsage = idle.close();
    const idlePssMb = pssByLabel(treeOf(launcher));
    const sinkPssMb = pssMb(sink.pid);
    const postline = (label: string): boolean => label !== 'sink';
    /** CPU ms per message of each Postline process over a window in which `n` messages were sent. */
    const perMessageByLabel = (u: typeof idleUsage, n: number): Record<string, number> =>
      Object.fromEntries(Object.entries(u.byLabel).filter(([l]) => postline(l)).map(([l, x]) => [l, (x.cpuSeconds * 1000) / n]));
    const cores = (u: typeof idleUsage, keep: (l: string) => boolean): number =>
      Object.entries(u.byLabel).reduce((sum, [l, x]) => (keep(l) ? sum + x.cpuSeconds : sum), 0) / u.wallSeconds;

    ctx.progress(`run ${run + 1}: single messages at ${p.latencyRate}/s for ${p.latencyMs / 1000} s, then the floor`);
    let i = 0;
    const single = sampler.window();
    // Each message is timed twice: from its POST (what the client waits, the API's durable
    // acceptance included) and from its 202 (accepted → 250, the pipeline's own queueing).
    const fromAccepted: number[] = [];
    const latency = await openLoop({ rate: p.latencyRate, durationMs: p.latencyMs, maxOutstanding: 50, signal: ctx.signal }, async () => {
      const rcpt = `lat.pl.${run}.${i++}@d${i % 50}.example`;
      const at = arrivals.expect(rcpt);
      await sendOne(launcher, rcpt);
      const accepted = epochMs();
      fromAccepted.push((await at) - accepted);
    });
    const singleUsage = single.close();
    const floor = await floorLatency(p, run, sink, arrivals, ctx.signal);
    // The raw libraries are measured on both sides of the batch and their mean is its baseline:
    // this VM's speed drifts by tens of percent within minutes, and one measurement after the
    // batch moved the ratio by as much as the changes it was meant to judge.
    ctx.progress(`run ${run + 1}: raw-library baselines, before the batch`);
    const rawBefore = await rawCpuPerMessage(p, `raw${run}a`, sink, ctx.signal);

    ctx.progress(`run ${run + 1}: ${p.messages.toLocaleString('en')} messages through the batch API`);
    const load = sampler.window();
    const loadPss: Record<string, number> = {};
    let loadPssPeakSum = 0;
    const pssTimer = setInterval(() => {
      const tree = treeOf(launcher);
      const now = pssByLabel(tree);
      for (const [l, mb] of Object.entries(now)) loadPss[l] = Math.max(loadPss[l] ?? 0, mb);
      loadPssPeakSum = Math.max(loadPssPeakSum, pssSum(now));
      // A process started under load (npm start's second renderer): its CPU counts from its spawn.
      for (const pid of tree) {
        if (pids.has(pid)) continue;
        pids.set(pid, processLabel(pid));
        sampler.watch(processLabel(pid), pid);
      }
    }, 1000);
    let e2e;
    const fromUs = hrtimeUs();
    // A password reset sent while a campaign goes in: CRITICAL_DURING_BATCH critical messages, one
    // every 200 ms from the batch's start (included in the sink's count, not in the throughput's n).
    const critical: Promise<number>[] = [];
    const criticalLoop = (async () => {
      for (let k = 0; k < CRITICAL_DURING_BATCH && !ctx.signal.aborted; k++) {
        const rcpt = `lat.crit.${run}.${k}@d${k % 50}.example`;
        const at = arrivals.expect(rcpt, 120_000);
        const t = epochMs();
        critical.push(sendOne(launcher, rcpt, 'critical').then(async () => (await at) - t));
        await sleep(200);
      }
    })();
    try {
      e2e = await endToEndHttp(launcher, sink, `emb${run}`, p.messages, 500, 6, 600_000, ctx.signal, CRITICAL_DURING_BATCH);
    } finally {
      clearInterval(pssTimer);
    }
    await criticalLoop;
    const criticalDuringBatch = latencyPercentiles(await Promise.all(critical));
    const loadUsage = load.close();
    loadWindow = { fromUs, toUs: hrtimeUs() };
    const cpuByLabel = perMessageByLabel(loadUsage, p.messages);

    ctx.progress(`run ${run + 1}: raw-library baselines, after the batch`);
    const rawAfter = await rawCpuPerMessage(p, `raw${run}b`, sink, ctx.signal);
    const rawCpu = { render: (rawBefore.render + rawAfter.render) / 2, smtp: (rawBefore.smtp + rawAfter.smtp) / 2 };
    figures = {
      startupMs: launcher.startupMs,
      criticalDuringBatch,
      cliMs,
      firstMessageMs,
      latency: latencyPercentiles(latency.latenciesMs),
      acceptedLatency: latencyPercentiles(fromAccepted),
      floor,
      idleCores: cores(idleUsage, postline),
      sinkIdleCores: cores(idleUsage, (l) => l === 'sink'),
      idlePssMb,
      loadPssMb: loadPss,
      loadPssPeakSumMb: loadPssPeakSum,
      sinkPssMb,
      throughput: e2e.rate,
      cpuMsPerMessage: Object.values(cpuByLabel).reduce((a, b) => a + b, 0),
      // Everything the processes spent over the window, the idle share included, per message sent in it.
      singleCpuMsPerMessage: (cores(singleUsage, postline) * singleUsage.wallSeconds * 1000) / Math.max(1, latency.latenciesMs.length),
      cpuByLabel,
      singleCpuByLabel: perMessageByLabel(singleUsage, Math.max(1, latency.latenciesMs.length)),
      rawCpuMsPerMessage: rawCpu,
      rawBracket: { before: rawBefore, after: rawAfter },
      rawLimit: (os.availableParallelism() * 1000) / (rawCpu.render + rawCpu.smtp),
    };
  } finally {
    sampler.stop();
    await launcher.stop();
  }
  // Profiles are written as each process exits.
  if (ctx.profile && loadWindow) figures.profiles = profileSummaries(profileDir, pids, loadWindow);
  return figures;
}

/** The same single messages sent straight to the sink by a pooled nodemailer transport. */
async function floorLatency(p: Params, run: number, sink: SinkProcess, arrivals: Arrivals, signal: AbortSignal): Promise<LatencyPercentiles> {
  const raw = (await rawRenderer()('floor', 0)).toString();
  const transport = nodemailer.createTransport({ host: sink.host, port: sink.port, secure: false, ignoreTLS: true, pool: true, maxConnections: 2, maxMessages: Infinity });
  try {
    // Warm the pool first, as Postline's fleets are warm.
    await transport.sendMail({ envelope: { from: FROM.email, to: [`warm.${run}@d0.example`] }, raw });
    let i = 0;
    const r = await openLoop({ rate: p.latencyRate, durationMs: p.latencyMs, maxOutstanding: 50, signal }, async () => {
      const rcpt = `lat.raw.${run}.${i++}@d${i % 50}.example`;
      const at = arrivals.expect(rcpt);
      await transport.sendMail({ envelope: { from: FROM.email, to: [rcpt] }, raw });
      await at;
    });
    return latencyPercentiles(r.latenciesMs);
  } finally {
    transport.close();
  }
}

/** Spawn → exit of `postline --help`: what loading the CLI costs before any stage runs. */
async function timeCli(): Promise<number> {
  const entry = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..', 'services', 'postline.mjs');
  const t0 = epochMs();
  await promisify(execFile)(process.execPath, [entry, '--help']);
  return epochMs() - t0;
}

function rows(p: Params, runs: RunFigures[]): BenchRow[] {
  const pick = (f: (r: RunFigures) => number): ReturnType<typeof summarize> => summarize(runs.map(f));
  const group = `npm start (postline start, analytics on), relay = the bench's SMTP sink, ${runs.length} fresh starts`;
  const floorP50 = pick((r) => r.floor.p50);
  const rawLimit = pick((r) => r.rawLimit);
  return [
    benchRow({ group, name: 'start-up: spawn → "Postline is running"', unit: 'ms', better: 'lower', value: pick((r) => r.startupMs), baseline: { name: 'postline --help (the CLI alone)', unit: 'ms', value: pick((r) => r.cliMs) }, target: { op: '<', value: 6000 } }),
    benchRow({ group, name: 'first message after start, POST → 250 at the sink', unit: 'ms', better: 'lower', value: pick((r) => r.firstMessageMs), baseline: { name: 'pooled nodemailer straight to the sink (p50)', unit: 'ms', value: floorP50 }, target: { op: '<', value: 50 } }),
    // The issue's latency targets are accepted → 250: from the API's 202 to the sink's 250.
    benchRow({ group, name: `single messages, ${p.latencyRate}/s for ${p.latencyMs / 1000} s, accepted (202) → 250: p50`, unit: 'ms', better: 'lower', value: pick((r) => r.acceptedLatency.p50), baseline: { name: 'pooled nodemailer straight to the sink (p50)', unit: 'ms', value: floorP50 }, target: { op: '<', value: 8 } }),
    benchRow({ group, name: `single messages, ${p.latencyRate}/s for ${p.latencyMs / 1000} s, accepted (202) → 250: p99`, unit: 'ms', better: 'lower', value: pick((r) => r.acceptedLatency.p99), baseline: { name: 'pooled nodemailer straight to the sink (p99)', unit: 'ms', value: pick((r) => r.floor.p99) }, target: { op: '<', value: 25 } }),
    // What the client waits in all: the same messages from their POST (the durable acceptance included).
    benchRow({ group, name: `single messages, ${p.latencyRate}/s for ${p.latencyMs / 1000} s, POST → 250: p50`, unit: 'ms', better: 'lower', value: pick((r) => r.latency.p50), baseline: { name: 'pooled nodemailer straight to the sink (p50)', unit: 'ms', value: floorP50 } }),
    benchRow({ group, name: `single messages, ${p.latencyRate}/s for ${p.latencyMs / 1000} s, POST → 250: p99`, unit: 'ms', better: 'lower', value: pick((r) => r.latency.p99), baseline: { name: 'pooled nodemailer straight to the sink (p99)', unit: 'ms', value: pick((r) => r.floor.p99) } }),
    benchRow({ group, name: `idle CPU, every process summed, over ${p.idleMs / 1000} s`, unit: '% of a core', better: 'lower', value: pick((r) => r.idleCores * 100), baseline: { name: 'the idle SMTP sink process (a Node server at rest)', unit: '% of a core', value: pick((r) => r.sinkIdleCores * 100) }, target: { op: '<', value: 2 } }),
    benchRow({ group, name: 'memory idle: PSS summed over every process', unit: 'MB', better: 'lower', value: pick((r) => pssSum(r.idlePssMb)), baseline: { name: 'the SMTP sink process (one Node process)', unit: 'MB', value: pick((r) => r.sinkPssMb) }, target: { op: '<', value: 600 } }),
    // The issue's measure: every process's PSS summed, at its peak over the batch. Each process's own
    // peak comes at another moment (the accept burst, the second renderer's start, analytics'
    // inserts), so the sum of those peaks, kept beside it, is an upper bound of it.
    benchRow({
      group,
      name: 'memory at full load: PSS summed over every process, its peak (each second, all sampled together)',
      unit: 'MB',
      better: 'lower',
      value: pick((r) => r.loadPssPeakSumMb),
      also: [{ label: 'each process\'s peak, summed', unit: 'MB', value: pick((r) => pssSum(r.loadPssMb)) }],
      baseline: { name: 'the SMTP sink process (one Node process)', unit: 'MB', value: pick((r) => r.sinkPssMb) },
      target: { op: '<', value: 900 },
    }),
    benchRow({
      group,
      name: `throughput: ${p.messages.toLocaleString('en')} via POST /v1/emails/batch, accepted → 250`,
      unit: 'msgs/s',
      better: 'higher',
      value: pick((r) => r.throughput),
      baseline: { name: `raw-library limit: ${os.availableParallelism()} cores / (Handlebars + MailComposer + nodemailer pool CPU per message)`, unit: 'msgs/s', value: rawLimit },
      // The issue's two targets chained: ≥ 0.9× the rig's end to end, which is ≥ 0.6× this limit.
      target: { op: '>=', value: 0.54 * rawLimit.median },
    }),
    benchRow({ group, name: `critical messages sent one by one during the batch (${CRITICAL_DURING_BATCH}, one per 200 ms from its start): p50`, unit: 'ms', better: 'lower', value: pick((r) => r.criticalDuringBatch.p50), baseline: { name: `single messages, ${p.latencyRate}/s, no batch (POST → 250 p50, same run)`, unit: 'ms', value: pick((r) => r.latency.p50) } }),
    benchRow({ group, name: 'critical messages sent one by one during the batch: the slowest', unit: 'ms', better: 'lower', value: pick((r) => r.criticalDuringBatch.max), baseline: { name: `single messages, ${p.latencyRate}/s, no batch (POST → 250, the slowest, same run)`, unit: 'ms', value: pick((r) => r.latency.max) } }),
    benchRow({ group, name: 'CPU per message, every Postline process summed', unit: 'ms', better: 'lower', value: pick((r) => r.cpuMsPerMessage), baseline: { name: 'the raw libraries, CPU per message added up', unit: 'ms', value: pick((r) => r.rawCpuMsPerMessage.render + r.rawCpuMsPerMessage.smtp) } }),
    benchRow({ group, name: `CPU per message at ${p.latencyRate}/s (the single-message window), every Postline process summed`, unit: 'ms', better: 'lower', value: pick((r) => r.singleCpuMsPerMessage), baseline: { name: `CPU per message under the ${p.messages.toLocaleString('en')}-message batch (same run)`, unit: 'ms', value: pick((r) => r.cpuMsPerMessage) } }),
  ];
}

function perProcessNotes(runs: RunFigures[]): string[] {
  const labels = [...new Set(runs.flatMap((r) => Object.keys(r.loadPssMb)))].sort();
  const med = (f: (r: RunFigures) => number | undefined): string => median(runs.map((r) => f(r) ?? 0)).toFixed(0);
  return [
    `PSS per process, idle / at load (MB, median): ${labels.map((l) => `${l} ${med((r) => r.idlePssMb[l])} / ${med((r) => r.loadPssMb[l])}`).join(' · ')}`,
    `CPU per message by process (ms, median): ${labels.map((l) => `${l} ${median(runs.map((r) => r.cpuByLabel[l] ?? 0)).toFixed(3)}`).join(' · ')}`,
    `CPU per message by process at the single-message rate, idle share included (ms, median): ${labels.map((l) => `${l} ${median(runs.map((r) => r.singleCpuByLabel[l] ?? 0)).toFixed(2)}`).join(' · ')}`,
    `raw libraries (ms CPU per message, median of each run's mean of before and after the batch): render ${median(runs.map((r) => r.rawCpuMsPerMessage.render)).toFixed(3)}, pooled SMTP client ${median(runs.map((r) => r.rawCpuMsPerMessage.smtp)).toFixed(3)}`,
    `raw libraries by run, render + SMTP client before → after the batch (ms): ${runs.map((r) => `${(r.rawBracket.before.render + r.rawBracket.before.smtp).toFixed(3)} → ${(r.rawBracket.after.render + r.rawBracket.after.smtp).toFixed(3)}`).join(' · ')}`,
  ];
}

/** `p` with `messages` from POSTLINE_BENCH_EMBEDDED_MESSAGES when set (a positive integer, else an error naming it). */
function withMessageCount(p: Params, raw: string | undefined): Params {
  if (raw === undefined || raw === '') return p;
  const messages = Number(raw);
  if (!Number.isInteger(messages) || messages < 1) throw new Error(`POSTLINE_BENCH_EMBEDDED_MESSAGES: a positive whole number of messages, not "${raw}"`);
  return { ...p, messages };
}

async function run(ctx: BenchContext): Promise<SuiteResult> {
  const p = withMessageCount(ctx.quick ? QUICK : process.env.POSTLINE_BENCH_EMBEDDED_FULL === '1' ? FULL : DEFAULT, process.env.POSTLINE_BENCH_EMBEDDED_MESSAGES);
  const sink = await startSinkProcess();
  const arrivals = new Arrivals();
  const unwatch = await sink.watch('lat.', arrivals.arrived);
  const templatesDir = writeTemplatesDir(ctx.tmpDir);
  const runs: RunFigures[] = [];
  const failures: string[] = [];
  const strays = strayPostlineProcesses();
  const strayNote = strays.length > 0 ? [`WARNING: ${strays.length} Postline process(es) not started by this bench were running (${strays.map((x) => `${x.label} ${x.pid}`).join(', ')}): they share library pages with the measured processes (PSS reads low) and take CPU; stop them and measure again`] : [];
  if (strayNote.length > 0) ctx.progress(strayNote[0]);
  try {
    for (let r = 0; r < ctx.runs && !ctx.signal.aborted; r++) {
      try {
        runs.push(await oneRun(ctx, p, r, sink, arrivals, templatesDir));
      } catch (err) {
        failures.push(`run ${r + 1}: ${(err as Error).message}`);
      }
    }
  } finally {
    await unwatch().catch(() => undefined);
    await sink.close();
    await killAll();
  }
  return {
    rows: runs.length > 0 ? rows(p, runs) : [],
    params: { ...p, cores: os.availableParallelism() },
    notes: [...strayNote, ...(runs.length > 0 ? [...perProcessNotes(runs), ...runs.flatMap((r) => r.profiles ?? [])] : [])],
    details: { runs },
    failures,
  };
}

export const suite: BenchSuite = {
  name: 'embedded',
  description: 'npm start as users run it: start-up, single-message latency, idle CPU, memory and throughput against same-run floors',
  timeLimitMs: { full: 40 * 60_000, quick: 10 * 60_000, profile: 2 * 60_000 },
  run,
};
