/**
 * Inbound DSN parsing throughput (issue 13: ≥ 1,000 messages/s on one core, ≥ 0.8× raw
 * mailparser on the same messages in the same run). Parses the bounce samples of
 * test/inbound/samples/ (Gmail, Microsoft, Yahoo, Postfix, Exim, qmail, an encoded DSN) one after
 * another with `parseBounce`, and the same messages with `mailparser.simpleParser`, alternating
 * which goes first per run. For `npm run bench -- suppression`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { simpleParser } from 'mailparser';
import { parseBounce } from '../../services/inbound/bounce-parser.js';
import { benchRow, type BenchRow } from './bench-suite.js';
import { summarize } from './bench-stats.js';

const SAMPLES_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'inbound', 'samples');
export const DSN_SAMPLES = ['gmail-dsn.eml', 'outlook-dsn.eml', 'yahoo-dsn.eml', 'postfix-dsn.eml', 'postfix-delayed.eml', 'exim-text.eml', 'qmail-text.eml', 'odd-encoded-dsn.eml'];

export interface DsnParseBenchOptions {
  /** Messages parsed per run by each parser (default 5,000). */
  messages?: number;
  /** Repeats of each measurement (default 5). */
  runs?: number;
  signal?: AbortSignal;
}

async function rate(messages: readonly Buffer[], count: number, parse: (raw: Buffer) => Promise<unknown>, signal?: AbortSignal): Promise<number> {
  const started = process.hrtime.bigint();
  let done = 0;
  for (; done < count && !signal?.aborted; done++) {
    const parsed = await parse(messages[done % messages.length]);
    if (parsed === undefined) throw new Error(`sample ${done % messages.length} did not parse`);
  }
  return done / (Number(process.hrtime.bigint() - started) / 1e9);
}

/** Rows: parseBounce messages/s (baseline simpleParser), and parseBounce relative to simpleParser. */
export async function dsnParseBench(opts: DsnParseBenchOptions = {}): Promise<BenchRow[]> {
  const count = opts.messages ?? 5_000;
  const runs = opts.runs ?? 5;
  const messages = DSN_SAMPLES.map((f) => fs.readFileSync(path.join(SAMPLES_DIR, f)));
  // Warm both parsers (JIT, lazy requires) before measuring.
  await rate(messages, 200, parseBounce);
  await rate(messages, 200, (raw) => simpleParser(raw));
  const ours: number[] = [];
  const theirs: number[] = [];
  for (let run = 0; run < runs && !opts.signal?.aborted; run++) {
    const a = () => rate(messages, count, parseBounce, opts.signal).then((r) => ours.push(r));
    const b = () => rate(messages, count, (raw) => simpleParser(raw), opts.signal).then((r) => theirs.push(r));
    if (run % 2 === 0) {
      await a();
      await b();
    } else {
      await b();
      await a();
    }
  }
  const group = `inbound DSN parsing (${messages.length} bounce shapes, ${count.toLocaleString('en')} messages per run, one core)`;
  const baseline = { name: 'mailparser.simpleParser on the same messages', unit: 'messages/s', value: summarize(theirs) };
  return [
    benchRow({ group, name: 'parseBounce (mailsplit + DSN/Exim/qmail fields)', unit: 'messages/s', better: 'higher', value: summarize(ours), baseline, target: { op: '>=', value: 1_000 } }),
    benchRow({
      group,
      name: 'parseBounce relative to mailparser (same run)',
      unit: '×',
      better: 'higher',
      value: summarize(ours.map((o, i) => o / theirs[i])),
      baseline: { name: 'mailparser.simpleParser', unit: '×', value: summarize(theirs.map(() => 1)) },
      target: { op: '>=', value: 0.8 },
    }),
  ];
}
