/**
 * `npm start` as the embedded bench runs it: the real `postline start` command through the
 * tests' launcher (test/embedded/launcher-process.ts: free ports, a temporary data directory,
 * its banner and demo key), with the relay pointed at the bench's SMTP sink and its start-up
 * timed. Also what the bench reads about the process tree it starts: every process (the launcher
 * and each process below it, found through /proc), each one's label and proportional memory (PSS).
 */
import fs from 'node:fs';
import path from 'node:path';
import { startLauncher as startTestLauncher } from '../embedded/launcher-process.js';
import { epochMs, stopChild } from './send-path-processes.js';
import { isPostlineEntry } from '../helpers/postline-entry.js';

export interface Launcher {
  pid: number;
  ingestUrl: string;
  /** `host:port` of its broker. */
  brokerAddress: string;
  apiKey: string;
  /** Spawn → "Postline is running", ms (free ports found first, a few ms at most). */
  startupMs: number;
  /** Ctrl-C (SIGINT): stages drain, the broker last; then whatever is left is killed. */
  stop(): Promise<void>;
}

/** Starts `postline start` delivering to `relay`; `env` adds POSTLINE_* options. */
export async function startLauncher(o: { relay: { host: string; port: number }; env?: Record<string, string>; args?: string[] }): Promise<Launcher> {
  const t0 = epochMs();
  // A return-path domain, so every stage runs (the inbound service needs one behind a relay), as under the capture default.
  const env = { POSTLINE_DISPATCHER_RELAY_HOST: o.relay.host, POSTLINE_DISPATCHER_RELAY_PORT: String(o.relay.port), POSTLINE_FEEDBACK_RETURN_PATH_DOMAIN: 'bounces.localhost', NODE_OPTIONS: '', ...o.env };
  const l = await startTestLauncher(env, 120_000, o.args);
  const startupMs = epochMs() - t0;
  return {
    pid: l.proc.pid as number,
    ingestUrl: `http://127.0.0.1:${l.ports.api}`,
    brokerAddress: `127.0.0.1:${l.ports.broker}`,
    apiKey: l.key,
    startupMs,
    async stop() {
      await stopChild(l.proc, 'SIGINT', 30_000);
      await l.destroy();
    },
  };
}

/**
 * Warms this process's `fetch` before anything is timed with it: Node loads and compiles its fetch
 * on first use (~30-40 ms here) and its body handling on the first request with a body (~30 ms
 * more), a cost of the client that curl does not have. The request is answered 401 before any
 * send-path code runs.
 */
export async function warmHttpClient(l: Launcher): Promise<void> {
  await (await fetch(`${l.ingestUrl}/v1/emails`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).arrayBuffer();
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

/**
 * Postline processes running beside the bench that it did not start (a `postline start` left
 * over by an interrupted run or a probe): they share library pages with the measured processes
 * (libchdb.so alone is ~180 MB resident), which lowers the PSS measured, and take CPU.
 */
export function strayPostlineProcesses(): Array<{ pid: number; label: string }> {
  const ours = new Set(descendants(process.pid));
  const out: Array<{ pid: number; label: string }> = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || ours.has(Number(entry)) || Number(entry) === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').some(isPostlineEntry)) out.push({ pid: Number(entry), label: processLabel(Number(entry)) });
    } catch {
      // exited while listing
    }
  }
  return out;
}

/**
 * "launcher" for `postline start`, the stage name for `postline <stage>`, "stages(a+b+...)" for
 * the process co-hosting stages (`postline stages a,b,...`), else the program's name (esbuild).
 */
export function processLabel(pid: number): string {
  try {
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const i = argv.findIndex(isPostlineEntry);
    const command = i >= 0 ? argv[i + 1] : undefined;
    if (command === 'stages') return `stages(${(argv[i + 2] ?? '').split(',').join('+')})`;
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
