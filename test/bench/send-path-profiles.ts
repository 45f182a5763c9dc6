/**
 * `--profile` for the send-path benchmark: the broker and every stage process run with
 * `--cpu-prof`; this reads the main-thread profile of the broker and of the last process of each
 * stage (the end-to-end ones) over the last end-to-end run only (start-up and idle waits left out) and says where the busy time
 * went — by package or Postline folder, then by function — as shares of busy (non-idle) time.
 */
import fs from 'node:fs';
import path from 'node:path';
import { summarizeProfile, type ProfileWindow } from './cpu-profile-summary.js';
import type { Rig } from './send-path-rig.js';

/** Groups a profile's file name (`kafkajs/src/...`, `services/renderer/x.ts`, `node:internal/...`) into a component. */
function component(file: string): string {
  if (file.startsWith('(')) return file;
  if (file.startsWith('node:')) {
    if (file.includes('stream')) return 'node: streams';
    if (file.includes('domexception') || file.includes('abort')) return 'node: DOMException/AbortSignal';
    if (file.includes('crypto')) return 'node: crypto';
    if (file.includes('modules')) return 'node: module loading';
    return 'node: other';
  }
  if (!file.includes('/')) return `native (${file || 'anonymous'})`;
  if (/^(services|shared)\//.test(file)) return file.split('/').slice(0, 2).join('/');
  return file.startsWith('@') ? file.split('/').slice(0, 2).join('/') : file.split('/')[0];
}

const pct = (x: number): string => `${(x * 100).toFixed(1).padStart(5)}%`;

/** Busy time of one profile by component and by function. */
export function busyBreakdown(title: string, file: string, window?: ProfileWindow, top = 12): string {
  const s = summarizeProfile(file, 2000, window);
  const busyMs = s.totalMs * (1 - s.idleShare);
  const byComponent = new Map<string, number>();
  for (const f of s.files) byComponent.set(component(f.name), (byComponent.get(component(f.name)) ?? 0) + f.selfMs);
  const lines = [`${title}: ${(busyMs / 1000).toFixed(1)} s busy of ${(s.totalMs / 1000).toFixed(1)} s profiled`, '  busy time by component:'];
  for (const [name, ms] of [...byComponent].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`    ${pct(ms / busyMs)}  ${name}`);
  lines.push('  busy time by function (self):');
  for (const f of s.functions.slice(0, top)) lines.push(`    ${pct(f.selfMs / busyMs)}  ${f.name}`);
  return lines.join('\n');
}

export function profileNotes(dir: string, rig: Rig, window?: ProfileWindow): string[] {
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')) : [];
  const notes = [`CPU profiles of every stage process (--cpu-prof; thread 0 is the main thread): ${dir}`];
  for (const stage of ['broker', 'ingest', 'renderer', 'dispatcher'] as const) {
    const proc = stage === 'broker' ? rig.broker : rig.started.filter((p) => p.label === stage).at(-1);
    // Named CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile; thread 0 is the main thread (1 is tsx's loader).
    const file = proc && files.find((f) => f.includes(`.${proc.pid}.0.`));
    if (file) notes.push(busyBreakdown(`${stage} (pid ${proc.pid}), last end-to-end run`, path.join(dir, file), window));
  }
  return notes;
}
