/**
 * What a bench run leaves behind: the machine it ran on and every suite's rows, as JSON in
 * `.bench/results-<timestamp>.json` and `.bench/latest.json` (the directory is gitignored).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import type { SuiteResult } from './bench-suite.js';

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  cpuMhz: number;
  totalMemoryBytes: number;
  freeMemoryBytes: number;
  loadAverage: number[];
  node: string;
  v8: string;
  platform: string;
  release: string;
  arch: string;
  tmpdir: string;
  /** Filesystem of the temp dir (statfs type magic and block size), where the suites write. */
  tmpFilesystem?: { type: number; blockSize: number; freeBytes: number };
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  const info: MachineInfo = {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    cpuMhz: cpus[0]?.speed ?? 0,
    totalMemoryBytes: os.totalmem(),
    freeMemoryBytes: os.freemem(),
    loadAverage: os.loadavg(),
    node: process.version,
    v8: process.versions.v8,
    platform: process.platform,
    release: os.release(),
    arch: process.arch,
    tmpdir: os.tmpdir(),
  };
  try {
    const s = fs.statfsSync(os.tmpdir());
    info.tmpFilesystem = { type: s.type, blockSize: s.bsize, freeBytes: s.bavail * s.bsize };
  } catch {
    // statfs is missing on some platforms; the rest still describes the machine.
  }
  return info;
}

export function describeMachine(m: MachineInfo): string {
  const gib = (b: number): string => `${(b / 2 ** 30).toFixed(1)} GiB`;
  return `${m.cpus} × ${m.cpuModel.trim()}, ${gib(m.freeMemoryBytes)} free of ${gib(m.totalMemoryBytes)}, load ${m.loadAverage.map((l) => l.toFixed(2)).join(' ')}, node ${m.node}, ${m.platform} ${m.release}`;
}

/** The code that was measured: the commit and the files changed on top of it (the working tree may differ). */
export interface Revision {
  commit: string | null;
  changedFiles: string[];
}

export function revision(cwd: string): Revision {
  const git = (...args: string[]): string => execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    const commit = git('rev-parse', 'HEAD').trim();
    const changedFiles = git('status', '--porcelain')
      .split('\n')
      .filter(Boolean)
      .map((l) => l.slice(3));
    return { commit, changedFiles };
  } catch {
    return { commit: null, changedFiles: [] };
  }
}

export interface SuiteRecord {
  name: string;
  description: string;
  startedAt: string;
  durationMs: number;
  runs: number;
  /** Average cores other processes used while the suite ran (null where unknown). */
  foreignCores: number | null;
  result?: SuiteResult;
  error?: string;
}

export interface BenchReport {
  startedAt: string;
  finishedAt: string;
  argv: string[];
  quick: boolean;
  machine: MachineInfo;
  revision: Revision;
  suites: SuiteRecord[];
}

/** Writes the report as `results-<timestamp>.json` and `latest.json`; returns the first path. */
export function writeReport(dir: string, report: BenchReport): string {
  fs.mkdirSync(dir, { recursive: true });
  const stamp = report.startedAt.replace(/[:.]/g, '-');
  const file = path.join(dir, `results-${stamp}.json`);
  const json = `${JSON.stringify(report, null, 2)}\n`;
  fs.writeFileSync(file, json);
  fs.writeFileSync(path.join(dir, 'latest.json'), json);
  return file;
}
