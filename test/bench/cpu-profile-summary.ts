/**
 * Reads a V8 `.cpuprofile` (from `node --cpu-prof`) and lists where the time went: self time
 * per function and per package/file, so a profile can be read from a terminal or a report
 * without opening DevTools. Also runnable on its own:
 * `node --import tsx test/bench/cpu-profile-summary.ts <file.cpuprofile> [top]`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface HotSpot {
  name: string;
  selfMs: number;
  share: number;
}

export interface ProfileSummary {
  totalMs: number;
  /** Share of samples in the idle/GC/program pseudo-frames. */
  idleShare: number;
  gcShare: number;
  functions: HotSpot[];
  files: HotSpot[];
}

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Shortens a script URL to `kafkajs/src/...`, `services/broker/...` or `node:...`. */
function shortFile(url: string): string {
  if (!url) return '(native)';
  if (url.startsWith('node:')) return url;
  const file = url.startsWith('file://') ? fileURLToPath(url) : url;
  const nm = file.lastIndexOf('node_modules/');
  if (nm >= 0) return file.slice(nm + 'node_modules/'.length);
  return path.relative(REPO_ROOT, file) || file;
}

/** A time window in the profile's clock, which is `process.hrtime` in microseconds. */
export interface ProfileWindow {
  fromUs: number;
  toUs: number;
}

/** `process.hrtime` in microseconds: the clock V8 stamps profile samples with. */
export function hrtimeUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** Self time per function and file; with `window`, only samples taken inside it (skips start-up). */
export function summarizeProfile(file: string, top = 15, window?: ProfileWindow): ProfileSummary {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  const from = Math.max(profile.startTime, window?.fromUs ?? -Infinity);
  const to = Math.min(profile.endTime, window?.toUs ?? Infinity);
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    t += delta;
    if (t < from || t > to) continue;
    selfUs.set(profile.samples[i], (selfUs.get(profile.samples[i]) ?? 0) + delta);
  }
  const totalUs = Math.max(1, to - from);
  const fns = new Map<string, number>();
  const files = new Map<string, number>();
  let idle = 0;
  let gc = 0;
  for (const [id, us] of selfUs) {
    const { functionName, url, lineNumber } = (byId.get(id) as ProfileNode).callFrame;
    if (functionName === '(idle)') idle += us;
    if (functionName === '(garbage collector)') gc += us;
    const where = shortFile(url);
    const key = url ? `${functionName || '(anonymous)'} ${where}:${lineNumber + 1}` : functionName;
    fns.set(key, (fns.get(key) ?? 0) + us);
    const group = url ? where : functionName;
    files.set(group, (files.get(group) ?? 0) + us);
  }
  const rank = (m: Map<string, number>): HotSpot[] =>
    [...m]
      .filter(([name]) => name !== '(idle)')
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, selfMs: us / 1000, share: us / totalUs }));
  return { totalMs: totalUs / 1000, idleShare: idle / totalUs, gcShare: gc / totalUs, functions: rank(fns), files: rank(files) };
}

export function formatProfileSummary(title: string, s: ProfileSummary): string {
  const pct = (x: number): string => `${(x * 100).toFixed(1).padStart(5)}%`;
  const lines = [`${title}: ${(s.totalMs / 1000).toFixed(1)} s profiled, idle ${pct(s.idleShare).trim()}, GC ${pct(s.gcShare).trim()}`];
  lines.push('  self time by file:');
  for (const f of s.files.slice(0, 8)) lines.push(`    ${pct(f.share)}  ${f.name}`);
  lines.push('  self time by function:');
  for (const f of s.functions) lines.push(`    ${pct(f.share)}  ${f.name}`);
  return lines.join('\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [file, top] = process.argv.slice(2);
  if (!file) {
    process.stderr.write('usage: cpu-profile-summary.ts <file.cpuprofile> [top]\n');
    process.exit(2);
  }
  process.stdout.write(`${formatProfileSummary(path.basename(file), summarizeProfile(file, Number(top ?? 25)))}\n`);
}
