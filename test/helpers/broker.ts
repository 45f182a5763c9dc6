/**
 * Test helpers for the embedded broker: a broker on a free port in a fresh temporary data
 * directory, and unique topic/group names per test.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { startBroker, type Broker, type StartBrokerOptions } from '../../services/broker/broker.js';

export interface TestBroker extends Broker {
  dataDir: string;
  /** Closes the broker and removes its data directory. */
  destroy(): Promise<void>;
}

export function tempDir(prefix = 'postline-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export async function startTestBroker(opts: StartBrokerOptions = {}): Promise<TestBroker> {
  const dataDir = opts.dataDir ?? tempDir('postline-broker-');
  const broker = await startBroker({ logger: pino({ level: process.env.LOG_LEVEL ?? 'silent' }), ...opts, dataDir });
  return {
    ...broker,
    dataDir,
    async destroy() {
      await broker.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A name unique to this test run, e.g. `uniqueName('topic')` → `topic-3f9a1c2b`. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes (no fixed sleeps in tests). */
export async function waitFor<T>(check: () => T | Promise<T>, timeoutMs = 10_000, what = 'condition'): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export interface BrokerProcess {
  bootstrap: string;
  port: number;
  pid: number;
  dataDir: string;
  /** Resolves when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Everything the process wrote to stdout and stderr so far (for failure messages). */
  output(): string;
  /** Sends `signal` (SIGKILL for a crash, SIGTERM for a clean stop) and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Runs `postline broker` as its own process (the way a crash test needs it: SIGKILL takes the
 * process and nothing else). Resolves once it logs its bootstrap address.
 */
export async function spawnBrokerProcess(opts: { dataDir: string; port?: number; args?: string[]; timeoutMs?: number }): Promise<BrokerProcess> {
  const { spawn } = await import('node:child_process');
  const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
  const child = spawn(
    process.execPath,
    [path.join(root, 'services', 'postline.mjs'), 'broker', '--port', String(opts.port ?? 0), '--data-dir', opts.dataDir, '--log-level', 'info', ...(opts.args ?? [])],
    // Unsupervised: logs on stdout, and the process lives until it is signalled.
    { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'POSTLINE_SUPERVISED')) },
  );
  let out = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const bootstrap = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`broker process did not start within ${opts.timeoutMs ?? 30_000} ms:\n${out}`)), opts.timeoutMs ?? 30_000);
    let ready = false;
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (ready) return;
      for (const line of out.split('\n')) {
        if (!line.includes('"bootstrap"')) continue;
        try {
          const parsed = JSON.parse(line) as { bootstrap?: string; msg?: string };
          if (parsed.bootstrap && parsed.msg === 'broker ready') {
            ready = true;
            clearTimeout(timer);
            resolve(parsed.bootstrap);
            return;
          }
        } catch {
          // a partial line; wait for the rest
        }
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`broker process exited (${code ?? signal}) before it was ready:\n${out}`));
    });
  });
  return {
    bootstrap,
    port: Number(bootstrap.split(':').at(-1)),
    pid: child.pid as number,
    dataDir: opts.dataDir,
    exited,
    output: () => out,
    async kill(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
