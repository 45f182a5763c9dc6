/**
 * Child processes of the send-path benchmark: Postline services run as in production
 * (`node services/postline.mjs <service>`), each resolved once it logs its ready line, and
 * helper processes forked with an IPC channel (the SMTP sink, the raw-library baselines). Every
 * child is registered, so `killAll()` — and, as a last resort, the bench process's own exit —
 * ends each one by its pid, whatever failed on the way.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { STAGE_NODE_FLAGS } from '../../shared/node-flags.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const ENTRY = path.join(ROOT, 'services', 'postline.mjs');

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function track(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // run.ts calls process.exit() after writing its report: no child may outlive the bench.
    const killLive = (): void => {
      for (const c of live) if (c.pid && alive(c)) process.kill(c.pid, 'SIGKILL');
    };
    process.once('exit', killLive);
    // Ctrl-C or a SIGTERM to the bench: end the children, then die of the same signal.
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.once(signal, () => {
        killLive();
        process.kill(process.pid, signal);
      });
    }
  }
}

const alive = (c: ChildProcess): boolean => c.exitCode === null && c.signalCode === null;

/** Signals a child by its pid and waits for it to exit; SIGKILL after `graceMs`. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 15_000): Promise<void> {
  if (!alive(child)) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid as number, signal);
  const timer = setTimeout(() => alive(child) && process.kill(child.pid as number, 'SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Ends every child still running (SIGTERM, then SIGKILL after the grace period). */
export async function killAll(graceMs = 10_000): Promise<void> {
  await Promise.all([...live].map((c) => stopChild(c, 'SIGTERM', graceMs).catch(() => undefined)));
}

export interface ServiceProcess {
  label: string;
  pid: number;
  child: ChildProcess;
  /** The JSON log line that said the service is ready. */
  readyLine: Record<string, unknown>;
  /** When the process was spawned and when its ready line arrived (epoch ms, sub-millisecond). */
  spawnedAt: number;
  readyAt: number;
  /** Log lines written so far (counted, not kept: a chatty stage must not cost the bench memory). */
  readonly lineCount: number;
  /** The last lines of output, for failure messages. */
  tail(): string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Epoch milliseconds with sub-millisecond resolution, comparable across processes. */
export const epochMs = (): number => performance.timeOrigin + performance.now();

export interface SpawnServiceOptions {
  label: string;
  args: string[];
  env: Record<string, string>;
  /** Which log line means ready (default: msg "service ready"). */
  ready?: (line: Record<string, unknown>) => boolean;
  /** Extra node flags (e.g. --cpu-prof). */
  nodeArgs?: string[];
  /** The stage's own node flags (default STAGE_NODE_FLAGS, the image's). */
  stageFlags?: readonly string[];
  timeoutMs?: number;
}

/** Starts `postline <args>` and resolves once it logs its ready line; rejects (and kills it) otherwise. */
export async function spawnService(o: SpawnServiceOptions): Promise<ServiceProcess> {
  // A stage's configuration is exactly `o.env`: POSTLINE_* variables of the bench's own shell
  // (POSTLINE_BENCH_* included, which stages reject as unknown options) are not passed on.
  const inherited = Object.entries(process.env).filter(([k]) => !k.startsWith('POSTLINE_') && k !== 'NODE_OPTIONS');
  const env = { ...Object.fromEntries(inherited), ...o.env };
  const spawnedAt = epochMs();
  const child = spawn(process.execPath, [...(o.stageFlags ?? STAGE_NODE_FLAGS), ...(o.nodeArgs ?? []), ENTRY, ...o.args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env });
  track(child);
  const tail: string[] = [];
  let lineCount = 0;
  const isReady = o.ready ?? ((l) => l.msg === 'service ready');
  const ready = new Promise<{ line: Record<string, unknown>; at: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${o.label} not ready within ${o.timeoutMs ?? 60_000} ms:\n${tail.join('\n')}`)), o.timeoutMs ?? 60_000);
    const onLine = (line: string): void => {
      lineCount++;
      tail.push(line);
      if (tail.length > 40) tail.shift();
      if (!line.startsWith('{') || !line.includes('ready')) return;
      try {
        const parsed = JSON.parse(line) as Record<string, unknown>;
        if (isReady(parsed)) {
          clearTimeout(timer);
          resolve({ line: parsed, at: epochMs() });
        }
      } catch {
        // not a JSON line
      }
    };
    readline.createInterface({ input: child.stdout! }).on('line', onLine);
    readline.createInterface({ input: child.stderr! }).on('line', onLine);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${o.label} exited (${code ?? signal}) before it was ready:\n${tail.join('\n')}`));
    });
  });
  try {
    const { line, at } = await ready;
    return {
      label: o.label,
      pid: child.pid as number,
      child,
      readyLine: line,
      spawnedAt,
      readyAt: at,
      get lineCount() {
        return lineCount;
      },
      tail: () => tail.join('\n'),
      stop: (signal = 'SIGTERM') => stopChild(child, signal),
    };
  } catch (err) {
    await stopChild(child, 'SIGKILL');
    throw err;
  }
}

/** Forks a TypeScript helper (`test/bench/<file>`) with an IPC channel; tsx loads it. */
export function forkHelper(file: string, args: string[] = []): ChildProcess {
  const child = fork(path.join(path.dirname(fileURLToPath(import.meta.url)), file), args, {
    cwd: ROOT,
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  track(child);
  return child;
}

/** Sends one request to a forked helper and resolves with its next message of type `reply`. */
export function request<T>(child: ChildProcess, message: Record<string, unknown>, reply: string, timeoutMs: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`no "${reply}" from helper ${child.pid} within ${timeoutMs} ms`)), timeoutMs);
    const onMessage = (m: { type?: string; error?: string }): void => {
      if (m.type === 'error') return done(new Error(`helper ${child.pid}: ${m.error}`));
      if (m.type === reply) done(undefined, m as T);
    };
    const onExit = (code: number | null, signal: string | null): void => done(new Error(`helper ${child.pid} exited (${code ?? signal}) before "${reply}"`));
    const done = (err?: Error, value?: T): void => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(value as T);
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
    child.send(message);
  });
}
