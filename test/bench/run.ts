/**
 * `npm run bench [-- <suite>...] [--quick] [--runs N] [--profile] [--wait-quiet S]`
 *
 * Finds the suites (`test/bench/<name>.bench.ts`, each exporting `suite: BenchSuite`), runs the
 * chosen ones one after another, prints a table per suite on stdout (progress goes to stderr)
 * and writes everything, with the machine's description, to `.bench/results-<timestamp>.json`
 * and `.bench/latest.json`. Exits non-zero if a suite failed; a missed target is reported, not
 * treated as a failure.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BenchContext, BenchSuite } from './bench-suite.js';
import { describeMachine, machineInfo, revision, writeReport, type BenchReport, type SuiteRecord } from './bench-report.js';
import { renderSuite } from './bench-table.js';
import { cpuSnapshot, foreignCores, waitForQuiet } from './machine-load.js';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const OUT_DIR = path.resolve(BENCH_DIR, '..', '..', '.bench');
/** Time a suite gets after its limit to wind down (close brokers, remove files) before the run gives up on it. */
const GRACE_MS = 60_000;

const USAGE = `usage: npm run bench -- [suite...] [--quick] [--runs N] [--profile] [--wait-quiet S]

  suite           run only these suites (default: all)
  --quick         small counts and 2 runs: a smoke check, not a measurement
  --runs N        repetitions per measurement (default 3, quick 2)
  --profile       also collect CPU profiles where a suite supports it (written to .bench/)
  --wait-quiet S  before each suite, wait up to S seconds for other processes to go idle
`;

/** Suite names from the `<name>.bench.ts` files; a suite is imported only when it is run. */
function suiteNames(): string[] {
  return fs
    .readdirSync(BENCH_DIR)
    .filter((f) => f.endsWith('.bench.ts'))
    .map((f) => f.slice(0, -'.bench.ts'.length))
    .sort();
}

async function loadSuite(name: string): Promise<BenchSuite> {
  const mod = (await import(pathToFileURL(path.join(BENCH_DIR, `${name}.bench.ts`)).href)) as { suite?: BenchSuite };
  if (!mod.suite || mod.suite.name !== name) throw new Error(`${name}.bench.ts must export \`suite\` with name "${name}"`);
  return mod.suite;
}

interface RunOptions {
  filters: string[];
  quick: boolean;
  runs: number;
  profile: boolean;
  waitQuietMs: number;
}

function parseCommandLine(): RunOptions {
  const { values, positionals } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      runs: { type: 'string' },
      profile: { type: 'boolean', default: false },
      'wait-quiet': { type: 'string', default: '0' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    allowPositionals: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const runs = values.runs === undefined ? (values.quick ? 2 : 3) : Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1 || runs > 20) {
    process.stderr.write(`--runs must be an integer from 1 to 20 (got "${values.runs}")\n\n${USAGE}`);
    process.exit(2);
  }
  const waitQuiet = Number(values['wait-quiet']);
  if (!Number.isFinite(waitQuiet) || waitQuiet < 0) {
    process.stderr.write(`--wait-quiet must be a number of seconds (got "${values['wait-quiet']}")\n\n${USAGE}`);
    process.exit(2);
  }
  return { filters: positionals, quick: values.quick, runs, profile: values.profile, waitQuietMs: waitQuiet * 1000 };
}

async function runSuite(name: string, opts: RunOptions): Promise<SuiteRecord> {
  let suite: BenchSuite;
  try {
    suite = await loadSuite(name);
  } catch (err) {
    // One suite that does not load must not stop the others.
    return { name, description: '', startedAt: new Date().toISOString(), durationMs: 0, runs: opts.runs, foreignCores: null, error: (err as Error).stack ?? String(err) };
  }
  if (opts.waitQuietMs > 0) await waitForQuiet(opts.waitQuietMs, (m) => process.stderr.write(`[${suite.name}] ${m}\n`));
  const startedAt = new Date();
  const limitMs = (opts.quick ? suite.timeLimitMs.quick : suite.timeLimitMs.full) + (opts.profile ? (suite.timeLimitMs.profile ?? 0) : 0);
  const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), `postline-bench-${suite.name}-`));
  const abort = new AbortController();
  const limitTimer = setTimeout(() => abort.abort(), limitMs);
  const ctx: BenchContext = {
    quick: opts.quick,
    runs: opts.runs,
    tmpDir,
    outDir: OUT_DIR,
    signal: abort.signal,
    profile: opts.profile,
    progress: (m) => process.stderr.write(`[${suite.name} ${((Date.now() - startedAt.getTime()) / 1000).toFixed(0).padStart(3)}s] ${m}\n`),
  };
  const record: SuiteRecord = { name: suite.name, description: suite.description, startedAt: startedAt.toISOString(), durationMs: 0, runs: opts.runs, foreignCores: null };
  const cpuBefore = cpuSnapshot();
  let watchdog: NodeJS.Timeout | undefined;
  try {
    const gaveUp = new Promise<never>((_, reject) => {
      watchdog = setTimeout(() => reject(new Error(`suite did not finish within its ${limitMs} ms limit plus ${GRACE_MS} ms`)), limitMs + GRACE_MS);
    });
    record.result = await Promise.race([suite.run(ctx), gaveUp]);
  } catch (err) {
    record.error = (err as Error).stack ?? String(err);
  } finally {
    clearTimeout(limitTimer);
    clearTimeout(watchdog);
    fs.rmSync(tmpDir, { recursive: true, force: true });
    record.durationMs = Date.now() - startedAt.getTime();
    record.foreignCores = foreignCores(cpuBefore, cpuSnapshot());
  }
  return record;
}

async function main(): Promise<void> {
  const opts = parseCommandLine();
  const all = suiteNames();
  const unknown = opts.filters.filter((f) => !all.includes(f));
  if (unknown.length) {
    process.stderr.write(`unknown suite(s): ${unknown.join(', ')}; available: ${all.join(', ')}\n`);
    process.exit(2);
  }
  const chosen = opts.filters.length ? all.filter((s) => opts.filters.includes(s)) : all;
  const report: BenchReport = { startedAt: new Date().toISOString(), finishedAt: '', argv: process.argv.slice(2), quick: opts.quick, machine: machineInfo(), revision: revision(path.dirname(OUT_DIR)), suites: [] };
  process.stdout.write(`postline bench${opts.quick ? ' (quick: smoke check only)' : ''} — ${describeMachine(report.machine)}\n\n`);
  for (const name of chosen) {
    const record = await runSuite(name, opts);
    report.suites.push(record);
    if (record.result) process.stdout.write(`${renderSuite(record.name, record.description, opts.runs, record.result, record.durationMs / 1000, record.foreignCores)}\n\n`);
    else process.stdout.write(`■ ${record.name}: FAILED after ${(record.durationMs / 1000).toFixed(0)} s\n${record.error}\n\n`);
  }
  report.finishedAt = new Date().toISOString();
  const file = writeReport(OUT_DIR, report);
  process.stdout.write(`results: ${path.relative(process.cwd(), file)} (also .bench/latest.json)\n`);
  // kafkajs and child processes may leave handles behind; the report is written, so leave.
  process.exit(report.suites.some((s) => s.error || s.result?.failures?.length) ? 1 : 0);
}

await main();
