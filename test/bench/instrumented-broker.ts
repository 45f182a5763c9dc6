/**
 * The broker as a child process with its I/O timed: every `fs.writeSync`, `fs.readSync`,
 * `fs.fsyncSync` and `fs.fdatasync` the broker makes is measured (by wrapping the `fs` module
 * object its modules call through; the broker code is unchanged), and so is event-loop delay.
 * Answers "is the loop blocked in a synchronous write?" and "how long does fsync take here?".
 *
 * `node --import tsx test/bench/instrumented-broker.ts <dataDir>`: prints `{"bootstrap": ...}`
 * when ready; over IPC, "reset" clears the numbers and "stats" replies with `IoStats`.
 */
import fs from 'node:fs';
import { createHistogram, monitorEventLoopDelay, type RecordableHistogram, type IntervalHistogram } from 'node:perf_hooks';
import pino from 'pino';
import { startBroker } from '../../services/broker/broker.js';

export interface TimingStats {
  count: number;
  totalMs: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface IoStats {
  seconds: number;
  eventLoopDelay: TimingStats;
  calls: Record<string, TimingStats>;
}

function stats(h: RecordableHistogram | IntervalHistogram, totalNs: number): TimingStats {
  const ms = (ns: number): number => ns / 1e6;
  return { count: h.count, totalMs: ms(totalNs), p50Ms: ms(h.percentile(50)), p99Ms: ms(h.percentile(99)), maxMs: ms(h.max) };
}

type Timed = { h: RecordableHistogram; totalNs: number };

function instrument(): Map<string, Timed> {
  const timed = new Map<string, Timed>();
  const mutable = fs as unknown as Record<string, (...args: unknown[]) => unknown>;
  const entry = (name: string): Timed => {
    const t = { h: createHistogram(), totalNs: 0 };
    timed.set(name, t);
    return t;
  };
  const record = (t: Timed, started: bigint): void => {
    const ns = Number(process.hrtime.bigint() - started);
    t.h.record(Math.max(1, ns));
    t.totalNs += ns;
  };
  for (const name of ['writeSync', 'readSync', 'fsyncSync']) {
    const original = mutable[name];
    const t = entry(name);
    mutable[name] = (...args: unknown[]) => {
      const started = process.hrtime.bigint();
      try {
        return original(...args);
      } finally {
        record(t, started);
      }
    };
  }
  // Asynchronous: the time from the call to its callback (thread-pool queueing included).
  const fdatasync = mutable.fdatasync;
  const t = entry('fdatasync (async)');
  mutable.fdatasync = (fd: unknown, cb: unknown) => {
    const started = process.hrtime.bigint();
    return fdatasync(fd, (err: unknown) => {
      record(t, started);
      (cb as (e: unknown) => void)(err);
    });
  };
  return timed;
}

async function main(): Promise<void> {
  const dataDir = process.argv[2];
  if (!dataDir) throw new Error('usage: instrumented-broker.ts <dataDir>');
  const timed = instrument();
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  let since = performance.now();
  const broker = await startBroker({ port: 0, dataDir, logger: pino({ level: 'warn' }) });
  process.stdout.write(`${JSON.stringify({ bootstrap: broker.bootstrap, instrumented: true })}\n`);
  process.on('message', (m) => {
    if (m === 'reset') {
      loop.reset();
      for (const t of timed.values()) {
        t.h.reset();
        t.totalNs = 0;
      }
      since = performance.now();
    } else if (m === 'stats') {
      const calls = Object.fromEntries([...timed].map(([name, t]) => [name, stats(t.h, t.totalNs)]));
      const out: IoStats = { seconds: (performance.now() - since) / 1000, eventLoopDelay: stats(loop, 0), calls };
      process.send?.(out);
    }
  });
  const stop = (): void => void broker.close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.once('disconnect', stop);
}

await main();
