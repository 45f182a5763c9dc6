/**
 * `npm run bench -- tracker`: the tracker (issue 14's target: p99 < 10 ms at 2,000 requests/s)
 * beside a bare Fastify redirect route in the same run.
 *
 * Both servers run in their own process (`postline tracker` against a `postline broker` child;
 * the bare app from tracker-bare-child.ts); the bench process is an open-loop client (undici
 * pool, 32 connections) sending a constant rate of GETs — 70 % clicks, 30 % opens over 1,000
 * recipients' signed links — for `seconds`, and measures each latency from the moment the
 * request was due (a slow answer cannot hide the requests queued behind it). The bare app sees
 * the same paths. Runs alternate tracker / bare; each row is the median of the runs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { benchRow, type BenchContext, type BenchSuite, type SuiteResult } from './bench-suite.js';
import { latencyPercentiles, summarize, type LatencyPercentiles } from './bench-stats.js';
import { startBrokerTarget } from './broker-targets.js';
import { spawnService } from './send-path-processes.js';
import { TRACKER_NODE_FLAGS } from '../../shared/node-flags.js';
import { hrtimeUs, type ProfileWindow } from './cpu-profile-summary.js';
import { busyBreakdown } from './send-path-profiles.js';
import { freePort } from '../helpers/free-port.js';
import { FeedbackKeyring } from '../../shared/feedback/feedback-token.js';
import { clickUrl, pixelUrl } from '../../shared/tracking/tracking-links.js';

interface Params {
  rate: number;
  seconds: number;
  connections: number;
}
const FULL: Params = { rate: 2000, seconds: 10, connections: 32 };
const QUICK: Params = { rate: 500, seconds: 2, connections: 16 };
const KEYS = [{ id: 1, secret: 'tracker-bench-secret-0123456789abcdefghij' }];
const HERE = path.dirname(fileURLToPath(import.meta.url));
const TICK_MS = 5;

/** 1,000 recipients' links: clicks on one of 3 links, and opens, mixed 70/30 in a fixed order. */
function workloadPaths(): string[] {
  const keyring = new FeedbackKeyring(KEYS);
  const issuedAt = Math.floor(Date.now() / 1000) - 86_400;
  const out: string[] = [];
  for (let i = 0; i < 1000; i++) {
    const copy = { messageId: `0b9f5a7e-4c1d-4a57-9d55-${String(i).padStart(12, '0')}`, tenant: i % 2 ? 'acme' : 'acme/eu', recipient: `user${i}@example${i % 50}.com`, issuedAt };
    for (let k = 0; k < 10; k++) {
      const url = k < 7 ? clickUrl(keyring, '', copy, k % 3, `https://shop.example/products/${i}/${k % 3}?utm_source=mail`) : pixelUrl(keyring, '', copy);
      out.push(url);
    }
  }
  return out;
}

/** Sends `rate` GETs/s for `seconds` (open loop) and returns latencies (ms, from when each was due) and errors. */
async function load(origin: string, paths: string[], p: Params, signal: AbortSignal): Promise<{ latencies: Float64Array; count: number; errors: number; errorKinds: string[]; achievedRate: number }> {
  const pool = new Pool(origin, { connections: p.connections, pipelining: 1 });
  const total = p.rate * p.seconds;
  const latencies = new Float64Array(total);
  let sent = 0;
  let done = 0;
  let errors = 0;
  const kinds = new Map<string, number>();
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    const fire = (i: number, due: number) => {
      pool
        .request({ path: paths[i % paths.length], method: 'GET', headers: { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0' } })
        .then(async (res) => {
          await res.body.dump();
          if (res.statusCode !== 302 && res.statusCode !== 200) {
            errors++;
            kinds.set(`HTTP ${res.statusCode}`, (kinds.get(`HTTP ${res.statusCode}`) ?? 0) + 1);
          }
        })
        .catch((err: Error & { code?: string }) => {
          errors++;
          kinds.set(err.code ?? err.message, (kinds.get(err.code ?? err.message) ?? 0) + 1);
        })
        .finally(() => {
          latencies[i] = performance.now() - due;
          if (++done === total) resolve();
        });
    };
    const tick = () => {
      const now = performance.now();
      // Every request whose time has come, each stamped with when it was due.
      while (sent < total && t0 + (sent * 1000) / p.rate <= now) {
        fire(sent, t0 + (sent * 1000) / p.rate);
        sent++;
      }
      if (sent < total && !signal.aborted) setTimeout(tick, TICK_MS);
      else if (signal.aborted && done === sent) resolve();
    };
    tick();
  });
  const elapsed = (performance.now() - t0) / 1000;
  await pool.close();
  return { latencies: latencies.subarray(0, done), count: done, errors, errorKinds: [...kinds].map(([k, n]) => `${k} ×${n}`), achievedRate: done / elapsed };
}

async function startBare(): Promise<{ origin: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [...TRACKER_NODE_FLAGS, '--import', 'tsx', path.join(HERE, 'tracker-bare-child.ts')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const rl = readline.createInterface({ input: child.stdout! });
  const origin = await new Promise<string>((resolve, reject) => {
    rl.on('line', (l) => {
      try {
        const j = JSON.parse(l) as { msg?: string; address?: string };
        if (j.msg === 'bare ready' && j.address) resolve(j.address);
      } catch {
        // not ours
      }
    });
    child.once('exit', (code) => reject(new Error(`bare app exited ${code}`)));
  });
  return { origin, child };
}

/** Where the tracker's busy time went during the measured runs (its main thread's profile). */
function trackerProfileNotes(dir: string, pid: number, window: ProfileWindow): string[] {
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')) : [];
  // Named CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile; thread 0 is the main thread.
  const file = files.find((f) => f.includes(`.${pid}.0.`));
  if (!file) return [`no CPU profile of the tracker (pid ${pid}) in ${dir}`];
  return [`CPU profile of the tracker: ${path.join(dir, file)}`, busyBreakdown(`tracker (pid ${pid}), measured runs`, path.join(dir, file), window.toUs > window.fromUs ? window : undefined, 25)];
}

/** Sum of a Prometheus metric's samples whose labels include `label` (all of them when omitted). */
export function metricSum(text: string, name: string, label = ''): number {
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{([^}]*)\\})? ([-+\\deE.]+)$`, 'gm'))) if ((m[1] ?? '').includes(label)) sum += Number(m[2]);
  return sum;
}

/**
 * What paused the tracker's event loop between two scrapes of its /metrics (prom-client's
 * default metrics): GC pauses by kind, and the event-loop delay (its histogram restarts at each
 * scrape, so the second scrape covers exactly the window; sampled every 100 ms).
 */
export function pauseNotes(before: string, after: string): string {
  const gc = (kind: string) => {
    const n = metricSum(after, 'postline_nodejs_gc_duration_seconds_count', `kind="${kind}"`) - metricSum(before, 'postline_nodejs_gc_duration_seconds_count', `kind="${kind}"`);
    const ms = (metricSum(after, 'postline_nodejs_gc_duration_seconds_sum', `kind="${kind}"`) - metricSum(before, 'postline_nodejs_gc_duration_seconds_sum', `kind="${kind}"`)) * 1000;
    return `${kind} ${n} (${ms.toFixed(0)} ms${n > 0 ? `, mean ${(ms / n).toFixed(1)} ms` : ''})`;
  };
  const lag = (name: string) => (metricSum(after, `postline_nodejs_eventloop_lag_${name}_seconds`) * 1000).toFixed(1);
  return `tracker pauses during the measured runs: GC ${['minor', 'major', 'incremental'].map(gc).join(', ')}; event-loop delay p99 ${lag('p99')} ms, max ${lag('max')} ms`;
}

async function run(ctx: BenchContext): Promise<SuiteResult> {
  const p = ctx.quick ? QUICK : FULL;
  const broker = await startBrokerTarget('child-process', { dataDir: path.join(ctx.tmpDir, 'broker') });
  const port = await freePort();
  const profileDir = path.join(ctx.outDir, `profiles-tracker-${Date.now()}`);
  // As its deployment runs it (TRACKER_NODE_FLAGS; the bare route gets the same); --profile adds --cpu-prof (written when it exits).
  const tracker = await spawnService({
    label: 'tracker',
    args: ['tracker'],
    env: {
      POSTLINE_KAFKA_BROKERS: broker.bootstrap,
      POSTLINE_KAFKA_PARTITIONS: '2',
      POSTLINE_FEEDBACK_KEYS: JSON.stringify(KEYS),
      POSTLINE_TRACKING_HOST: '127.0.0.1',
      POSTLINE_TRACKING_PORT: String(port),
      POSTLINE_OPS_HOST: '127.0.0.1',
      POSTLINE_OPS_PORT: '0',
    },
    ready: (l) => l.msg === 'tracker ready',
    stageFlags: TRACKER_NODE_FLAGS,
    nodeArgs: ctx.profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [],
  });
  const bare = await startBare();
  const paths = workloadPaths();
  const runs: { tracker: LatencyPercentiles[]; bare: LatencyPercentiles[]; rates: number[]; errors: number; errorKinds: Set<string> } = { tracker: [], bare: [], rates: [], errors: 0, errorKinds: new Set() };
  const window: ProfileWindow = { fromUs: 0, toUs: 0 };
  const notes: string[] = [];
  try {
    // Warm-up (JIT, connections), not measured.
    await load(`http://127.0.0.1:${port}`, paths, { ...p, seconds: 1 }, ctx.signal);
    await load(bare.origin, paths, { ...p, seconds: 1 }, ctx.signal);
    const opsAddress = String(tracker.readyLine.ops ?? '');
    const scrape = async () => (opsAddress ? (await fetch(`${opsAddress}/metrics`)).text() : '');
    const before = await scrape();
    window.fromUs = hrtimeUs();
    for (let r = 0; r < ctx.runs && !ctx.signal.aborted; r++) {
      const t = await load(`http://127.0.0.1:${port}`, paths, p, ctx.signal);
      const b = await load(bare.origin, paths, p, ctx.signal);
      runs.tracker.push(latencyPercentiles(t.latencies));
      runs.bare.push(latencyPercentiles(b.latencies));
      runs.rates.push(t.achievedRate);
      runs.errors += t.errors + b.errors;
      for (const k of [...t.errorKinds.map((e) => `tracker: ${e}`), ...b.errorKinds.map((e) => `bare: ${e}`)]) runs.errorKinds.add(k);
      ctx.progress(`run ${r + 1}: tracker p99 ${runs.tracker.at(-1)!.p99.toFixed(2)} ms at ${t.achievedRate.toFixed(0)}/s; bare p99 ${runs.bare.at(-1)!.p99.toFixed(2)} ms`);
    }
    window.toUs = hrtimeUs();
    const metrics = await scrape();
    const metric = (name: string) => [...metrics.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+(?:\\.\\d+)?)`, 'gm'))].reduce((s, m) => s + Number(m[1]), 0);
    const pick = (xs: LatencyPercentiles[], k: keyof LatencyPercentiles) => summarize(xs.map((x) => x[k]));
    const group = `${p.rate.toLocaleString('en')} requests/s for ${p.seconds} s (70 % clicks, 30 % opens), ${p.connections} connections`;
    const row = benchRow({
      group,
      name: 'tracker: verify token, machine check, queue event, 302 / pixel',
      unit: 'ms p99',
      better: 'lower',
      value: pick(runs.tracker, 'p99'),
      also: [
        { label: 'p50', unit: 'ms', value: pick(runs.tracker, 'p50') },
        { label: 'p95', unit: 'ms', value: pick(runs.tracker, 'p95') },
        { label: 'max', unit: 'ms', value: pick(runs.tracker, 'max') },
        { label: 'rate', unit: 'req/s', value: summarize(runs.rates) },
      ],
      baseline: { name: 'bare Fastify 302 / GIF route, same paths, same client', unit: 'ms p99', value: pick(runs.bare, 'p99') },
      target: { op: '<', value: 10 },
      ...(runs.errors > 0 ? { warnings: [`${runs.errors} requests failed or answered neither 302 nor 200: ${[...runs.errorKinds].join(', ')}`] } : {}),
    });
    notes.push(
      pauseNotes(before, metrics),
      `events produced by the tracker: ${metric('postline_events_published_total')}, dropped: ${metric('postline_tracker_events_dropped_total')}, hits: ${metric('postline_tracker_hits_total')}`,
      `bare p50 ${pick(runs.bare, 'p50').median.toFixed(2)} ms, p95 ${pick(runs.bare, 'p95').median.toFixed(2)} ms`,
    );
    return {
      rows: [row],
      params: { ...p, runs: ctx.runs, links: paths.length },
      // The profile's notes join these in `finally`, once the tracker has exited and written it.
      notes,
      details: { tracker: runs.tracker, bare: runs.bare },
    };
  } finally {
    bare.child.kill('SIGTERM');
    await tracker.stop('SIGTERM');
    await broker.close();
    if (ctx.profile) notes.push(...trackerProfileNotes(profileDir, tracker.pid, window));
  }
}

export const suite: BenchSuite = {
  name: 'tracker',
  description: 'open pixel and click redirects: p99 at 2,000 requests/s vs a bare Fastify route',
  timeLimitMs: { full: 300_000, quick: 90_000 },
  run,
};
