/**
 * `npm start` as the embedded bench runs it: the real `postline start` command in a child
 * process (its own data directory, free ports, the relay pointed at the bench's SMTP sink),
 * resolved once it prints its banner, with the demo API key read from it. Also what the bench
 * reads about the process tree it starts: every process (the launcher and each stage it
 * spawned, found through /proc), each one's label, CPU time and proportional memory (PSS).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { epochMs, stopChild } from './send-path-processes.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const ENTRY = path.join(ROOT, 'services', 'postline.mjs');

export interface Launcher {
  pid: number;
  child: ChildProcess;
  ingestUrl: string;
  apiKey: string;
  /** Spawn → "Postline is running", ms. */
  startupMs: number;
  /** The launcher's output so far (for failure messages). */
  output(): string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Starts `postline start` delivering to `relay`; `env` adds POSTLINE_* options. */
export async function startLauncher(o: { dataDir: string; relay: { host: string; port: number }; env?: Record<string, string>; timeoutMs?: number }): Promise<Launcher> {
  const [api, broker, smtp, outbox, analytics] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
  // Exactly what a user's shell would give it: no POSTLINE_* of the bench's own shell, no NODE_OPTIONS.
  const inherited = Object.entries(process.env).filter(([k]) => !k.startsWith('POSTLINE_') && k !== 'NODE_OPTIONS');
  const env = {
    ...Object.fromEntries(inherited),
    POSTLINE_DISPATCHER_RELAY_HOST: o.relay.host,
    POSTLINE_DISPATCHER_RELAY_PORT: String(o.relay.port),
    ...o.env,
  };
  const args = [ENTRY, 'start', '--data-dir', o.dataDir, '--api-port', String(api), '--broker-port', String(broker), '--smtp-port', String(smtp), '--outbox-port', String(outbox), '--analytics-port', String(analytics)];
  const spawnedAt = epochMs();
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (d: Buffer): void => {
    output += d.toString();
    if (output.length > 200_000) output = output.slice(-100_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const stop = async (): Promise<void> => {
    // SIGINT, as Ctrl-C: the launcher stops the stages in order, then the broker.
    await stopChild(child, 'SIGINT', 30_000);
    for (const pid of descendants(child.pid as number)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  };
  const started = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`postline start: no banner within ${o.timeoutMs ?? 120_000} ms:\n${output.slice(-3000)}`)), o.timeoutMs ?? 120_000);
    const check = (): void => {
      if (output.includes('Postline is running')) {
        clearTimeout(timer);
        resolve(epochMs());
      }
    };
    child.stdout!.on('data', check);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`postline start exited (${code ?? signal}) before its banner:\n${output.slice(-3000)}`));
    });
  }).catch(async (err) => {
    await stop();
    throw err;
  });
  // The banner is printed in one write: the key line is there as soon as the banner is.
  const apiKey = /API key\s+(\S+)/.exec(output)?.[1];
  if (!apiKey) {
    await stop();
    throw new Error(`postline start: no API key in its banner:\n${output.slice(-3000)}`);
  }
  return { pid: child.pid as number, child, ingestUrl: `http://127.0.0.1:${api}`, apiKey, startupMs: started - spawnedAt, output: () => output, stop };
}

/** Every live process below `pid` (children, grandchildren, ...), from /proc. */
export function descendants(pid: number): number[] {
  const parents = new Map<number, number[]>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(ppid, [...(parents.get(ppid) ?? []), Number(entry)]);
    } catch {
      // exited while listing
    }
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    for (const c of parents.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

/** "launcher" for `postline start`, else the stage name (`postline <stage>`). */
export function processLabel(pid: number): string {
  try {
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const i = argv.findIndex((a) => a.endsWith('postline.mjs'));
    const command = i >= 0 ? argv[i + 1] : undefined;
    return command === 'start' ? 'launcher' : (command ?? path.basename(argv[0] ?? `pid ${pid}`));
  } catch {
    return `pid ${pid}`;
  }
}

/** Proportional set size in MB (shared pages split among the processes sharing them). */
export function pssMb(pid: number): number {
  try {
    const rollup = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    return Number(/^Pss:\s+(\d+)/m.exec(rollup)?.[1] ?? Number.NaN) / 1024;
  } catch {
    return Number.NaN;
  }
}
