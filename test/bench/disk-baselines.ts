/**
 * The raw limits of the disk the broker writes to, measured with plain `fs` calls on a file in
 * the same directory tree: sequential append + fdatasync per batch (what a produce with acks=-1
 * cannot beat), sequential read of the same bytes (what a consumer cannot beat), and the
 * latency of appending single records with one fdatasync per 1 ms tick at a fixed rate (what
 * group commit at that rate cannot beat).
 */
import fs from 'node:fs';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { Deadline } from './bench-timing.js';

const fdatasync = promisify(fs.fdatasync);

export interface RawThroughputRun {
  records: number;
  bytes: number;
  seconds: number;
  truncated: boolean;
}

/** Appends `batch` (one buffer holding a batch's records) `batches` times, fdatasync after each. */
export function rawAppendFsync(file: string, batch: Buffer, recordsPerBatch: number, batches: number, timeLimitMs: number, signal: AbortSignal): RawThroughputRun {
  const fd = fs.openSync(file, 'w');
  const deadline = new Deadline(timeLimitMs, signal);
  let done = 0;
  let position = 0;
  const t0 = performance.now();
  try {
    for (; done < batches && !deadline.passed; done++) {
      fs.writeSync(fd, batch, 0, batch.length, position);
      position += batch.length;
      fs.fdatasyncSync(fd);
    }
  } finally {
    fs.closeSync(fd);
  }
  return { records: done * recordsPerBatch, bytes: position, seconds: (performance.now() - t0) / 1000, truncated: done < batches };
}

/** Reads `file` front to back in `chunkBytes` reads; records are counted at `recordBytes` each. */
export function rawSequentialRead(file: string, recordBytes: number, chunkBytes: number, timeLimitMs: number, signal: AbortSignal): RawThroughputRun {
  const fd = fs.openSync(file, 'r');
  const size = fs.fstatSync(fd).size;
  const deadline = new Deadline(timeLimitMs, signal);
  const buf = Buffer.allocUnsafe(chunkBytes);
  let position = 0;
  const t0 = performance.now();
  try {
    while (position < size && !deadline.passed) {
      const n = fs.readSync(fd, buf, 0, chunkBytes, position);
      if (n === 0) break;
      position += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return { records: Math.floor(position / recordBytes), bytes: position, seconds: (performance.now() - t0) / 1000, truncated: position < size };
}

export interface RawLatencyRun {
  latenciesMs: Float64Array;
  achievedRate: number;
  truncated: boolean;
}

/**
 * The disk's side of produce latency at `rate` records/s: every 1 ms tick, append the records
 * that are due (one write each) and fdatasync once. Latency runs from each record's scheduled
 * time to the end of the fdatasync that covered it, as in the kafkajs measurement.
 */
export async function rawPacedAppendLatency(file: string, record: Buffer, rate: number, durationMs: number, signal: AbortSignal): Promise<RawLatencyRun> {
  const fd = fs.openSync(file, 'w');
  const total = Math.floor((rate * durationMs) / 1000);
  const latencies = new Float64Array(total);
  const deadline = new Deadline(durationMs * 2 + 5_000, signal);
  let written = 0;
  let position = 0;
  const t0 = performance.now();
  try {
    while (written < total && !deadline.passed) {
      const due = Math.min(total, Math.floor(((performance.now() - t0) * rate) / 1000) + 1);
      const from = written;
      for (; written < due; written++) {
        fs.writeSync(fd, record, 0, record.length, position);
        position += record.length;
      }
      await fdatasync(fd);
      const now = performance.now();
      for (let i = from; i < written; i++) latencies[i] = now - (t0 + (i * 1000) / rate);
      await sleep(1);
    }
  } finally {
    fs.closeSync(fd);
  }
  return { latenciesMs: latencies.subarray(0, written), achievedRate: written / ((performance.now() - t0) / 1000), truncated: written < total };
}
