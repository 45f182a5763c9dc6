/**
 * Plain-text rendering of suite results: one table per suite, grouped rows, each measurement
 * beside its same-run baseline and the ratio between them, then warnings and notes.
 */
import type { BenchRow, SuiteResult } from './bench-suite.js';
import type { Summary } from './bench-stats.js';
import { BUSY_MACHINE_CORES } from './machine-load.js';

/** 1,234,567 / 12.3 / 1.23 / 0.123: enough digits to compare, no more. */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 1000) return Math.round(v).toLocaleString('en-US');
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toFixed(3);
}

const withUnit = (v: number, unit: string): string => `${formatNumber(v)} ${unit}`;
const range = (s: Summary): string => (s.runs > 1 ? `${formatNumber(s.min)} – ${formatNumber(s.max)}` : '');

function targetCell(row: BenchRow): string {
  if (!row.target) return '';
  return `${row.target.op} ${formatNumber(row.target.value)} ${row.target.met ? 'met' : 'MISSED'}`;
}

function cells(row: BenchRow): string[] {
  return [
    `  ${row.name}`,
    withUnit(row.value.median, row.unit),
    range(row.value),
    (row.also ?? []).map((a) => `${a.label ? `${a.label} ` : ''}${withUnit(a.value.median, a.unit)}`).join(', '),
    row.baseline.name,
    withUnit(row.baseline.value.median, row.baseline.unit),
    `${row.ratio.toFixed(row.ratio >= 10 ? 1 : 2)}×`,
    targetCell(row),
  ];
}

const HEADER = ['benchmark', 'median', 'min – max', 'also', 'baseline (same run)', 'baseline median', 'ratio', 'target'];
/** Columns whose content is a number, right-aligned. */
const NUMERIC = new Set([1, 2, 3, 5, 6]);

export function renderTable(rows: BenchRow[]): string {
  const body = rows.map(cells);
  const widths = HEADER.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (r: string[]): string =>
    r
      .map((c, i) => (NUMERIC.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  const out = [line(HEADER), line(widths.map((w) => '─'.repeat(w)))];
  let group: string | undefined;
  rows.forEach((row, i) => {
    if (row.group !== group) {
      group = row.group;
      out.push(group);
    }
    out.push(line(body[i]));
  });
  return out.join('\n');
}

export function renderSuite(name: string, description: string, runs: number, result: SuiteResult, seconds: number, foreignCores: number | null): string {
  const parts = [`■ ${name}: ${description}`, `  ${runs} run(s) per measurement, interleaved with its baseline; median, min – max; ratio = median / baseline median; ${seconds.toFixed(0)} s`];
  if (foreignCores !== null) {
    const busy = foreignCores > BUSY_MACHINE_CORES;
    parts.push(`  ${busy ? '! ' : ''}other processes used ${foreignCores.toFixed(2)} cores on average meanwhile${busy ? ': the machine was not quiet, treat these numbers as unreliable' : ''}`);
  }
  parts.push('');
  parts.push(renderTable(result.rows));
  const warnings = result.rows.flatMap((r) => (r.warnings ?? []).map((w) => `  ! ${r.group} / ${r.name.trim()}: ${w}`));
  if (warnings.length) parts.push('', 'warnings:', ...warnings);
  if (result.failures?.length) parts.push('', 'FAILED:', ...result.failures.map((f) => `  ${f}`));
  if (result.notes.length) parts.push('', 'notes:', ...result.notes.map((n) => n.replace(/^/gm, '  ')));
  return parts.join('\n');
}
