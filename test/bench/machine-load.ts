/**
 * How much CPU other processes took while a suite ran. A benchmark on a shared machine is only
 * as good as its quiet: this compares the whole machine's busy time (/proc/stat) with what the
 * bench process and the children it has reaped used (/proc/self/stat), and reports the rest.
 * Linux only; elsewhere it reports nothing rather than guessing.
 */
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

export interface CpuSnapshot {
  at: number;
  /**
   * Busy ticks of every CPU: user, nice, system and steal (a hypervisor taking the CPU is
   * interference too). irq and softirq are left out: loopback TCP and disk completions the
   * bench itself causes are accounted there, not to the bench process.
   */
  machineTicks: number;
  /** utime + stime + cutime + cstime of this process (reaped children included). */
  ownTicks: number;
}

let ticksPerSecond: number | undefined;

/**
 * `extraOwnSeconds`: CPU of processes that belong to the bench but are not yet reaped (a child
 * broker), so it is not counted as interference.
 */
export function cpuSnapshot(extraOwnSeconds = 0): CpuSnapshot | null {
  try {
    ticksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    const cpu = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, , , , , steal] = cpu;
    const stat = fs.readFileSync('/proc/self/stat', 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
    return { at: performance.now(), machineTicks: user + nice + system + (steal ?? 0), ownTicks: f[11] + f[12] + f[13] + f[14] + extraOwnSeconds * ticksPerSecond };
  } catch {
    return null;
  }
}

/** Average cores used by processes other than this one and its reaped children between the snapshots. */
export function foreignCores(before: CpuSnapshot | null, after: CpuSnapshot | null): number | null {
  if (!before || !after || !ticksPerSecond) return null;
  const seconds = (after.at - before.at) / 1000;
  if (seconds <= 0) return null;
  const foreign = after.machineTicks - before.machineTicks - (after.ownTicks - before.ownTicks);
  return Math.max(0, foreign / ticksPerSecond / seconds);
}

/** Average cores taken by other processes above which a measurement is flagged as disturbed. */
export const BUSY_MACHINE_CORES = 0.2;

/** One warning naming the runs during which other processes were busy, or none. */
export function interferenceWarnings(foreign: Array<number | null>): string[] {
  const busy = foreign.map((f, i) => ({ f, run: i + 1 })).filter((x): x is { f: number; run: number } => x.f !== null && x.f > BUSY_MACHINE_CORES);
  if (busy.length === 0) return [];
  const worst = Math.max(...busy.map((b) => b.f));
  return [`other processes were busy during run(s) ${busy.map((b) => b.run).join(', ')} (up to ${worst.toFixed(2)} cores): not a quiet measurement`];
}

/**
 * Waits until other processes use less than BUSY_MACHINE_CORES over a 3 s window, or `maxMs`
 * passes. Returns the last reading (null where the platform cannot tell).
 */
export async function waitForQuiet(maxMs: number, progress: (m: string) => void): Promise<number | null> {
  const deadline = Date.now() + maxMs;
  for (;;) {
    const before = cpuSnapshot();
    await sleep(3_000);
    const busy = foreignCores(before, cpuSnapshot());
    if (busy === null || busy < BUSY_MACHINE_CORES) return busy;
    if (Date.now() >= deadline) {
      progress(`machine still busy (${busy.toFixed(2)} cores used by other processes); starting anyway`);
      return busy;
    }
    progress(`waiting for a quiet machine: other processes use ${busy.toFixed(2)} cores`);
  }
}
