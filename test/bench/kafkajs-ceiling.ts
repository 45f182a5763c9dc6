/**
 * What kafkajs costs on its own, with no broker and no network: encoding the same produce
 * request the throughput benchmark sends, against copying the same keys and values into one
 * buffer (the least any client must do). If this ceiling is near the end-to-end number, the
 * client is the bottleneck, not the broker.
 */
import { randomBytes } from 'node:crypto';
import { benchRow, type BenchContext, type BenchRow } from './bench-suite.js';
import { summarize } from './bench-stats.js';
import { Deadline, interleave } from './bench-timing.js';
import { makeMessages } from './kafka-workloads.js';
import { encodeProduceFrame } from './pre-encoded-producer.js';
import { interferenceWarnings } from './machine-load.js';

interface EncodeRun {
  records: number;
  seconds: number;
  truncated: boolean;
}

async function repeatFor(iterations: number, limitMs: number, signal: AbortSignal, recordsEach: number, fn: () => unknown): Promise<EncodeRun> {
  const deadline = new Deadline(limitMs, signal);
  let done = 0;
  const t0 = performance.now();
  for (; done < iterations && !deadline.passed; done++) await fn();
  return { records: done * recordsEach, seconds: (performance.now() - t0) / 1000, truncated: done < iterations };
}

const stopped = (runs: EncodeRun[], what: string): string[] =>
  runs.flatMap((r, i) => (r.truncated ? [`${what} ${i + 1} stopped at its time limit after ${r.records} records`] : []));

export async function kafkajsEncodeRows(ctx: BenchContext, group: string, size: number, recordsPerBatch: number, iterations: number): Promise<BenchRow[]> {
  const messages = makeMessages(recordsPerBatch, Array.from({ length: 16 }, () => randomBytes(size)));
  const parts = messages.flatMap((m) => [Buffer.from(m.key as string), m.value as Buffer]);
  ctx.progress(`${group}: encode ${size / 1024} KB × ${recordsPerBatch}`);
  await encodeProduceFrame('bench', messages); // warm the JIT
  const runs = await interleave(
    ctx.runs,
    async () => repeatFor(iterations, 10_000, ctx.signal, recordsPerBatch, () => Buffer.concat(parts)),
    async () => repeatFor(iterations, 10_000, ctx.signal, recordsPerBatch, () => encodeProduceFrame('bench', messages)),
  );
  const rate = (r: EncodeRun): number => r.records / r.seconds;
  return [
    benchRow({
      group,
      name: `kafkajs encodes a produce request, ${size / 1024} KB × ${recordsPerBatch.toLocaleString('en-US')}`,
      unit: 'rec/s',
      better: 'higher',
      value: summarize(runs.measured.map(rate)),
      also: [{ unit: 'MB/s', value: summarize(runs.measured.map((r) => (r.records * size) / r.seconds / 1e6)) }],
      baseline: { name: 'Buffer.concat of the same keys and values', unit: 'rec/s', value: summarize(runs.baseline.map(rate)) },
      warnings: [
        ...stopped(runs.measured, 'run'),
        ...stopped(runs.baseline, 'baseline run'),
        ...interferenceWarnings(runs.foreignCores),
      ],
    }),
  ];
}
