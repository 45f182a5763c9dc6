/**
 * `postline start` as a user runs it, in a child process on free ports and a temporary data
 * directory, for tests that need to watch and hurt it: its output, its children's pids.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir, waitFor } from '../helpers/broker.js';
import { freePort } from '../helpers/free-port.js';
import { isPostlineEntry } from '../helpers/postline-entry.js';

const ENTRY = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'services', 'postline.mjs');


export interface Launcher {
  proc: ChildProcess;
  dataDir: string;
  ports: { api: number; broker: number; smtp: number; outbox: number; analytics: number; inbound: number; tracker: number; submission: number; submissions: number };
  /** Everything printed so far (stdout and stderr). */
  output(): string;
  exited: Promise<number | null>;
  /** The demo key from the banner (after `ready`). */
  key: string;
  /** The pid of the launcher's child running `name` (a stage or "broker"), if there is one. */
  childPid(name: string): number | undefined;
  /**
   * The launcher's child that runs `stage` — its own process (`postline <stage>`) or the one it
   * shares with others (`postline stages a,b,...`) — with the name the launcher logs it under.
   */
  hostOf(stage: string): { pid: number; name: string } | undefined;
  /** The command of each child (`broker`, `analytics`, `stages renderer,...`), sorted. */
  commands(): string[];
  /** Its children's whole command lines (node flags, arguments). */
  commandLines(): string[];
  /** The pids of every child still running. */
  children(): number[];
  /** Kills the launcher and whatever it left behind, removes the data directory. */
  destroy(): Promise<void>;
}

/** Children of `pid` with their command lines. */
export function childProcesses(pid: number): Array<{ pid: number; args: string }> {
  let out = '';
  try {
    out = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(pid)], { encoding: 'utf8' });
  } catch {
    return []; // ps exits 1 when there are none
  }
  return out
    .split('\n')
    .map((l) => /^\s*(\d+)\s+(.*)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ pid: Number(m[1]), args: m[2] }));
}

/** The `postline` commands of `pid`'s children (`broker`, `analytics`, `stages renderer,...`), sorted. */
export function childCommands(pid: number): string[] {
  return childProcesses(pid).map((c) => command(c.args).join(' ')).sort();
}

/** The words after the postline entry (`postline.mjs`, a compiled `cli.js`) in a command line: the command and its first argument. */
function command(args: string): string[] {
  const words = args.split(/\s+/);
  const i = words.findIndex(isPostlineEntry);
  return i < 0 ? [] : words.slice(i + 1, i + 3).filter((w) => !w.startsWith('--'));
}

/** Starts `postline start` and waits for its banner. */
export async function startLauncher(env: NodeJS.ProcessEnv = {}, bannerTimeoutMs = 180_000, args: string[] = []): Promise<Launcher> {
  const ports = { api: await freePort(), broker: await freePort(), smtp: await freePort(), outbox: await freePort(), analytics: await freePort(), inbound: await freePort(), tracker: await freePort(), submission: await freePort(), submissions: await freePort() };
  const dataDir = tempDir('postline-start-');
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('POSTLINE_')));
  const proc = spawn(
    process.execPath,
    [ENTRY, 'start', '--data-dir', dataDir, '--api-port', String(ports.api), '--broker-port', String(ports.broker), '--smtp-port', String(ports.smtp), '--outbox-port', String(ports.outbox), '--analytics-port', String(ports.analytics), '--inbound-port', String(ports.inbound), '--tracker-port', String(ports.tracker), '--submission-port', String(ports.submission), '--submissions-port', String(ports.submissions), ...args],
    { env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  proc.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const launcher: Launcher = {
    proc,
    dataDir,
    ports,
    output: () => output,
    exited,
    key: '',
    childPid(name) {
      return childProcesses(proc.pid!).find((c) => c.args.split(/\s+/).some((a, i, all) => isPostlineEntry(a) && all[i + 1] === name))?.pid;
    },
    hostOf(stage) {
      for (const c of childProcesses(proc.pid!)) {
        const [name, list] = command(c.args);
        if (name === stage) return { pid: c.pid, name };
        if (name === 'stages' && list?.split(',').includes(stage)) return { pid: c.pid, name };
      }
      return undefined;
    },
    commands: () => childCommands(proc.pid!),
    commandLines: () => childProcesses(proc.pid!).map((c) => c.args),
    children: () => childProcesses(proc.pid!).map((c) => c.pid),
    async destroy() {
      const left = launcher.children();
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      for (const pid of left) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
  await Promise.race([
    waitFor(() => output.includes('Postline is running'), bannerTimeoutMs, 'the launcher banner'),
    exited.then((code) => {
      throw new Error(`the launcher exited (code ${code}) before its banner:\n${output.slice(-3000)}`);
    }),
  ]);
  launcher.key = /API key\s+(\S+)/.exec(output)?.[1] ?? '';
  return launcher;
}

/** Resolves once nothing accepts connections on `port` any more. */
export async function portReleased(port: number, timeoutMs = 15_000): Promise<void> {
  await waitFor(async () => {
    const s = net.connect(port, '127.0.0.1');
    return await new Promise<boolean>((r) => {
      s.once('connect', () => (s.destroy(), r(false)));
      s.once('error', () => r(true));
    });
  }, timeoutMs, `port ${port} released`);
}
