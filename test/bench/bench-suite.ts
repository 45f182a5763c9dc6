/**
 * The contract between `run.ts` and a benchmark suite. A suite lives in
 * `test/bench/<name>.bench.ts` and exports `suite: BenchSuite`; `run.ts` finds it by file name,
 * gives it a context (scratch directory, quick/full, a deadline) and prints and stores the rows it
 * returns. Every row pairs a measurement with a baseline taken in the same run, so a number is
 * never read without something on the same machine, the same day, to compare it against.
 */
import type { Summary } from './bench-stats.js';

export type Better = 'higher' | 'lower';

/** What a measurement should reach, e.g. `{ op: '>=', value: 50_000 }` records/s. */
export interface Target {
  op: '>=' | '<';
  value: number;
}

export interface BenchRow {
  /** Heading the row is printed under, e.g. "broker in a child process". */
  group: string;
  name: string;
  unit: string;
  better: Better;
  /** Median, min and max over the repeated runs. */
  value: Summary;
  /** Other views of the same runs, printed as medians: MB/s beside records/s, p95 and max beside p99. */
  also?: Array<{ label?: string; unit: string; value: Summary }>;
  /** A reference measured in the same run; `ratio` is value.median / baseline.value.median. */
  baseline: { name: string; unit: string; value: Summary };
  ratio: number;
  target?: Target & { met: boolean };
  /** Set when a run stopped at its time limit before its count, or failed. */
  warnings?: string[];
}

export interface SuiteResult {
  rows: BenchRow[];
  /** The counts, sizes and durations the suite ran with. */
  params: Record<string, unknown>;
  /** Findings to print under the table (limits hit, profiles written, ...). */
  notes: string[];
  /** Anything else worth keeping in the JSON (per-run CPU use, raw percentiles, ...). */
  details?: Record<string, unknown>;
  /** Parts that failed while the rest still ran; any entry makes the bench exit non-zero. */
  failures?: string[];
}

export interface BenchContext {
  /** Smaller counts and fewer runs: a smoke check that the suite still works. */
  quick: boolean;
  /** How many times each measurement (and its baseline) is repeated. */
  runs: number;
  /** A fresh directory under os.tmpdir() for this suite, removed after it. */
  tmpDir: string;
  /** Where artefacts that outlive the run go (CPU profiles): the `.bench/` directory. */
  outDir: string;
  /** Aborted when the suite's time limit passes; workloads stop early and flag their rows. */
  signal: AbortSignal;
  /** Collect CPU profiles where the suite supports it (`--profile`). */
  profile: boolean;
  /** A progress line on stderr (stdout carries only the table). */
  progress(message: string): void;
}

export interface BenchSuite {
  name: string;
  description: string;
  /** Wall-clock limit for the whole suite; past it `signal` aborts. `profile` is added with `--profile`. */
  timeLimitMs: { full: number; quick: number; profile?: number };
  run(ctx: BenchContext): Promise<SuiteResult>;
}

/** Builds a row, computing the ratio and whether the target is met. */
export function benchRow(row: Omit<BenchRow, 'ratio' | 'target'> & { target?: Target }): BenchRow {
  const ratio = row.value.median / row.baseline.value.median;
  const { target, ...rest } = row;
  const out: BenchRow = { ...rest, ratio };
  if (target) {
    const v = row.value.median;
    out.target = { ...target, met: target.op === '>=' ? v >= target.value : v < target.value };
  }
  return out;
}
