/**
 * Samples the resident memory (VmRSS) and CPU time of labelled processes every few hundred
 * milliseconds (Linux /proc), so each phase of the benchmark can say how much memory each
 * stage peaked at and how many cores each used. A label may change process (a stage restarted
 * between runs): windows aggregate by label. Elsewhere than Linux it reports nothing.
 */
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';

export interface ProcessUsage {
  /** Highest VmRSS seen during the window, in MB. */
  peakRssMb: number;
  /** CPU seconds (user + system) used during the window. */
  cpuSeconds: number;
  /** Set when the CPU figure covers a shorter span than the window (a helper's own work only). */
  wallSeconds?: number;
}

export interface UsageReport {
  wallSeconds: number;
  byLabel: Record<string, ProcessUsage>;
}

interface Sample {
  rssMb: number;
  cpuSeconds: number;
}

let ticksPerSecond: number | undefined;

function readSample(pid: number): Sample | undefined {
  try {
    ticksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
    return { rssMb: rssKb / 1024, cpuSeconds: (f[11] + f[12]) / ticksPerSecond };
  } catch {
    return undefined; // gone (or not Linux)
  }
}

interface Window {
  startedAt: number;
  /** CPU seconds per pid when the window opened (0 for a pid that started later). */
  cpuAtStart: Map<number, number>;
  peakRss: Map<string, number>;
  /** Pids seen during the window, by label. */
  pids: Map<number, string>;
}

export class ProcessSampler {
  private readonly labels = new Map<number, string>();
  /** Last sample per pid; kept after the process exits so its CPU still counts. */
  private readonly last = new Map<number, Sample>();
  private readonly windows = new Set<Window>();
  private timer?: NodeJS.Timeout;

  constructor(private readonly everyMs = 200) {}

  start(): this {
    this.timer = setInterval(() => this.tick(), this.everyMs);
    this.timer.unref();
    return this;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Starts sampling `pid` under `label` (the bench process itself may be watched too). */
  watch(label: string, pid: number): void {
    this.labels.set(pid, label);
    const s = readSample(pid);
    if (!s) return;
    this.last.set(pid, s);
    for (const w of this.windows) this.note(w, pid, label, s);
  }

  /**
   * CPU seconds used so far by the watched processes still running, except `exceptPid`: what
   * the bench's own children cost that the kernel has not yet added to the bench's reaped
   * children time (so it is not counted as interference from other processes).
   */
  aliveCpuSeconds(exceptPid?: number): number {
    let sum = 0;
    for (const pid of this.labels.keys()) {
      if (pid === exceptPid) continue;
      const s = readSample(pid);
      if (s) sum += s.cpuSeconds;
    }
    return sum;
  }

  /** Opens a window; `close()` returns peak RSS and CPU per label since. */
  window(): { close(): UsageReport } {
    const w: Window = { startedAt: performance.now(), cpuAtStart: new Map(), peakRss: new Map(), pids: new Map() };
    for (const [pid, label] of this.labels) {
      const s = readSample(pid);
      if (!s) continue; // exited before the window: not part of it
      this.last.set(pid, s);
      this.note(w, pid, label, s);
      w.cpuAtStart.set(pid, s.cpuSeconds);
    }
    this.windows.add(w);
    return {
      close: () => {
        this.tick();
        this.windows.delete(w);
        const byLabel: Record<string, ProcessUsage> = {};
        for (const [pid, label] of w.pids) {
          const u = (byLabel[label] ??= { peakRssMb: 0, cpuSeconds: 0 });
          u.cpuSeconds += (this.last.get(pid)?.cpuSeconds ?? 0) - (w.cpuAtStart.get(pid) ?? 0);
        }
        for (const [label, rss] of w.peakRss) (byLabel[label] ??= { peakRssMb: 0, cpuSeconds: 0 }).peakRssMb = rss;
        return { wallSeconds: (performance.now() - w.startedAt) / 1000, byLabel };
      },
    };
  }

  private note(w: Window, pid: number, label: string, s: Sample): void {
    w.pids.set(pid, label);
    if (Number.isFinite(s.rssMb)) w.peakRss.set(label, Math.max(w.peakRss.get(label) ?? 0, s.rssMb));
  }

  private tick(): void {
    for (const [pid, label] of this.labels) {
      const s = readSample(pid);
      if (!s) continue;
      this.last.set(pid, s);
      for (const w of this.windows) this.note(w, pid, label, s);
    }
  }
}

/** "renderer 1.02 cores, 142 MB · dispatcher ..." for a note. */
export function formatUsage(r: UsageReport, order: string[] = Object.keys(r.byLabel)): string {
  return order
    .filter((l) => r.byLabel[l])
    .map((l) => `${l} ${(r.byLabel[l].cpuSeconds / r.wallSeconds).toFixed(2)} cores / ${r.byLabel[l].peakRssMb.toFixed(0)} MB`)
    .join(' · ');
}
