/**
 * A pipeline stage as its own process (`postline <stage>`), the way fault tests need it: SIGKILL
 * takes that process and nothing else, and a restart is a new process with the same
 * environment. Resolves once the stage logs "service ready". Output is kept (parsed JSON lines
 * and raw text) for assertions and failure messages.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { waitFor } from './broker.js';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const ENTRY = path.join(ROOT, 'services', 'postline.mjs');

export interface StageProcess {
  stage: string;
  pid: number;
  /** Parsed JSON log lines so far. */
  lines: Array<Record<string, unknown>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves when the stage logs "service ready"; rejects if it exits (or times out) first. */
  ready: Promise<void>;
  /** "service ready" was logged. */
  readonly isReady: boolean;
  readonly alive: boolean;
  /** Set when `kill` was called (an exit without it is the stage's own). */
  readonly killed: boolean;
  /** The last lines of output (for failure messages). */
  tail(n?: number): string;
  /** Resolves with the first log line (seen before or after the call) matching `pred`. */
  waitForLine(pred: (l: Record<string, unknown>) => boolean, timeoutMs?: number, what?: string): Promise<Record<string, unknown>>;
  kill(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface SpawnOptions {
  timeoutMs?: number;
  /** Every output line is also appended here (kept for a failed run's post-mortem). */
  logFile?: string;
  /** Resolve at once instead of at "service ready" (`ready` tells when). Default true. */
  waitReady?: boolean;
}

export async function spawnStage(stage: string, args: string[], env: NodeJS.ProcessEnv, opts: SpawnOptions = {}): Promise<StageProcess> {
  const { timeoutMs = 60_000, logFile, waitReady = true } = opts;
  const log = logFile ? fs.createWriteStream(logFile, { flags: 'a' }) : undefined;
  // Test and bench knobs (POSTLINE_BENCH_*, POSTLINE_SOAK_*) are not stage options: a stage
  // refuses unknown POSTLINE_* variables, so they must not leak into its environment.
  const childEnv = Object.fromEntries(
    Object.entries({ ...process.env, ...env }).filter(([k]) => k !== 'POSTLINE_SUPERVISED' && !/^POSTLINE_(BENCH|SOAK)_/.test(k)),
  );
  const child: ChildProcess = spawn(process.execPath, [ENTRY, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: childEnv });
  const lines: Array<Record<string, unknown>> = [];
  const raw: string[] = [];
  const onLine = (line: string): void => {
    log?.write(`${line}\n`);
    raw.push(line);
    if (raw.length > 2000) raw.splice(0, 1000);
    try {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // a stack trace or other text: kept in `raw` only
    }
  };
  readline.createInterface({ input: child.stdout! }).on('line', onLine);
  readline.createInterface({ input: child.stderr! }).on('line', onLine);
  let alive = true;
  let killed = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => {
      alive = false;
      log?.end(`--- exited (code ${code}, signal ${signal})\n`);
      resolve({ code, signal });
    }),
  );
  const proc: StageProcess = {
    stage,
    pid: child.pid as number,
    lines,
    exited,
    ready: Promise.resolve(),
    get isReady() {
      return lines.some((l) => l.msg === 'service ready');
    },
    get alive() {
      return alive;
    },
    get killed() {
      return killed;
    },
    tail: (n = 30) => raw.slice(-n).join('\n'),
    waitForLine: (pred, ms = timeoutMs, what = 'log line') =>
      waitFor(
        () => {
          if (!alive && !lines.some(pred)) throw new Error(`${stage} exited while waiting for ${what}:\n${raw.slice(-30).join('\n')}`);
          return lines.find(pred);
        },
        ms,
        `${stage}: ${what}`,
      ),
    async kill(signal: NodeJS.Signals = 'SIGTERM') {
      killed = true;
      if (alive) child.kill(signal);
      return exited;
    },
  };
  proc.ready = proc.waitForLine((l) => l.msg === 'service ready', timeoutMs, 'service ready').then(() => undefined);
  if (!waitReady) {
    proc.ready.catch(() => undefined); // the caller looks at it when it cares
    return proc;
  }
  try {
    await proc.ready;
  } catch (err) {
    await proc.kill('SIGKILL');
    throw err;
  }
  return proc;
}
