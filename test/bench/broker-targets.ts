/**
 * The broker under test, started either inside the bench process (client and broker share one
 * event loop and one core) or as its own `postline broker` process (each gets a core), behind
 * one interface so every workload runs against both.
 */
import { spawn, execFileSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { startBroker } from '../../services/broker/broker.js';
import { withTimeout } from './bench-timing.js';
import type { IoStats } from './instrumented-broker.js';

export type BrokerMode = 'in-process' | 'child-process';

export interface BrokerTarget {
  mode: BrokerMode;
  bootstrap: string;
  dataDir: string;
  /** CPU seconds the broker's own process has used, or null when it is the bench process. */
  cpuSeconds(): number | null;
  /** Stops the broker (a child gets SIGTERM and writes its CPU profile on exit). */
  close(): Promise<void>;
  /** Instrumented child only: clears the I/O timings, then (after a workload) reads them. */
  resetIoStats?(): void;
  ioStats?(): Promise<IoStats>;
}

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = path.join(REPO_ROOT, 'services', 'postline.mjs');
const INSTRUMENTED = path.join(REPO_ROOT, 'test', 'bench', 'instrumented-broker.ts');

export interface BrokerTargetOptions {
  dataDir: string;
  /** `none` skips fsync entirely: isolates the cost of durability. Default `group`. */
  durability?: 'group' | 'none';
  /** Child only: write a V8 CPU profile of the broker into this directory on exit. */
  cpuProfileDir?: string;
  /**
   * Child only: run `instrumented-broker.ts` (same broker, I/O calls timed) instead of the
   * `postline broker` command. For diagnosis, not for the reported numbers.
   */
  instrumented?: boolean;
}

export async function startBrokerTarget(mode: BrokerMode, opts: BrokerTargetOptions): Promise<BrokerTarget> {
  return mode === 'in-process' ? startInProcess(opts) : startChild(opts);
}

async function startInProcess(opts: BrokerTargetOptions): Promise<BrokerTarget> {
  const broker = await startBroker({ port: 0, dataDir: opts.dataDir, durability: opts.durability ?? 'group', logger: pino({ level: 'warn' }) });
  return { mode: 'in-process', bootstrap: broker.bootstrap, dataDir: opts.dataDir, cpuSeconds: () => null, close: () => broker.close() };
}

async function startChild(opts: BrokerTargetOptions): Promise<BrokerTarget> {
  const nodeArgs = opts.cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProfileDir}`] : [];
  // "broker ready" (with the bootstrap address) is logged at info; the broker logs nothing
  // per request at info, so this level costs nothing on the measured path.
  const args = opts.instrumented
    ? [...nodeArgs, '--import', 'tsx', INSTRUMENTED, opts.dataDir]
    : [...nodeArgs, CLI, 'broker', '--port', '0', '--data-dir', opts.dataDir, '--log-level', 'info', '--durability', opts.durability ?? 'group'];
  const stdio: StdioOptions = opts.instrumented ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'];
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio });
  const output: string[] = [];
  const keep = (line: string): void => {
    output.push(line);
    if (output.length > 50) output.shift();
  };
  // If the bench dies or exits without closing this broker, take the child with it.
  const killOnExit = (): void => void child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      process.off('exit', killOnExit);
      resolve(code);
    }),
  );
  child.stderr?.setEncoding('utf8').on('data', (d: string) => d.split('\n').filter(Boolean).forEach(keep));
  try {
    const bootstrap = await withTimeout(readBootstrap(child, keep, exited), 20_000, 'broker child start-up');
    return {
      mode: 'child-process',
      bootstrap,
      dataDir: opts.dataDir,
      cpuSeconds: () => processCpuSeconds(child.pid as number),
      close: () => stopChild(child, exited),
      ...(opts.instrumented ? ioStatsClient(child) : {}),
    };
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`broker child failed to start: ${(err as Error).message}\n${output.join('\n')}`);
  }
}

function readBootstrap(child: ChildProcess, keep: (line: string) => void, exited: Promise<number | null>): Promise<string> {
  return new Promise((resolve, reject) => {
    let partial = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      const lines = (partial + d).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        keep(line);
        try {
          const entry = JSON.parse(line) as { bootstrap?: string };
          if (entry.bootstrap) resolve(entry.bootstrap);
        } catch {
          // not a log line
        }
      }
    });
    void exited.then((code) => reject(new Error(`exited with code ${code} before it was ready`)));
  });
}

async function stopChild(child: ChildProcess, exited: Promise<number | null>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  try {
    await withTimeout(exited, 15_000, 'broker child shutdown');
  } catch {
    child.kill('SIGKILL');
    await exited;
  }
}

function ioStatsClient(child: ChildProcess): Pick<BrokerTarget, 'resetIoStats' | 'ioStats'> {
  return {
    resetIoStats: () => void child.send('reset'),
    ioStats: () =>
      withTimeout(
        new Promise<IoStats>((resolve) => {
          child.once('message', (m) => resolve(m as IoStats));
          child.send('stats');
        }),
        5_000,
        'broker I/O stats',
      ),
  };
}

let clockTicks: number | undefined;

/** utime + stime of a process from /proc (Linux); null where that is unavailable. */
export function processCpuSeconds(pid: number): number | null {
  try {
    clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / clockTicks;
  } catch {
    return null;
  }
}
