/**
 * Runs kcat (librdkafka) as a real second client. Missing kcat is a test failure with the
 * install command, never a silent skip: the librdkafka path is half of what the broker promises.
 */
import { spawn, spawnSync } from 'node:child_process';

export const KCAT = process.env.KCAT ?? 'kcat';

export interface KcatResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Throws with the install hint when kcat cannot be run. */
export function assertKcatInstalled(): void {
  const r = spawnSync(KCAT, ['-V'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new Error(`kcat is required for the librdkafka compatibility tests but could not be run (${r.error?.message ?? `exit ${r.status}`}): apt-get install kcat`);
  }
}

/**
 * Runs kcat to completion (give it `-e` or `-L`/`-Q` so it exits by itself: its stdout is
 * block-buffered and lost if it has to be killed). A run past `timeoutMs` is killed and
 * reported with whatever it printed.
 */
export function kcat(args: string[], opts: { input?: string | Buffer; timeoutMs?: number } = {}): Promise<KcatResult> {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  return new Promise((resolve, reject) => {
    const child = spawn(KCAT, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`kcat ${args.join(' ')} did not finish within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`kcat could not be started (${err.message}): apt-get install kcat`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

/** Runs kcat and fails with its output unless it exits 0. */
export async function kcatOk(args: string[], opts: { input?: string | Buffer; timeoutMs?: number } = {}): Promise<string> {
  const r = await kcat(args, opts);
  if (r.code !== 0) throw new Error(`kcat ${args.join(' ')} exited ${r.code ?? r.signal}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}
