/**
 * `--profile`: after the measured runs, repeats four broker workloads once each for diagnosis.
 * The broker runs as an instrumented child (`instrumented-broker.ts`: its fs calls and event-loop
 * delay timed) under `--cpu-prof`, the bench process under the inspector's profiler, and each
 * side's profile is summarised over the workload's window only. Profiles are kept in
 * `.bench/profiles-<timestamp>/` for DevTools; numbers taken under a profiler are not results.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Session } from 'node:inspector/promises';
import type { BenchContext } from './bench-suite.js';
import { startBrokerTarget, type BrokerTarget } from './broker-targets.js';
import { benchKafka, createTopic, makeMessages, pacedProduceLatency, produceThroughput } from './kafka-workloads.js';
import { encodeProduceFrame, preEncodedLatency, preEncodedThroughput } from './pre-encoded-producer.js';
import { formatProfileSummary, hrtimeUs, summarizeProfile } from './cpu-profile-summary.js';
import type { BrokerBenchParams } from './broker-bench-rows.js';
import type { IoStats } from './instrumented-broker.js';

/** kafkajs cannot issue 5,000 single-record sends/s on 2 cores; 5 per send is the shape it can sustain. */
const KAFKAJS_PER_SEND = 5;

interface ProfiledWorkload {
  slug: string;
  title: string;
  /** Sets up (topic, encoded frames) outside the profiled window; returns the workload itself. */
  prepare(broker: BrokerTarget): Promise<() => Promise<unknown>>;
}

function workloads(ctx: BenchContext, p: BrokerBenchParams): ProfiledWorkload[] {
  const L = p.latency;
  const value = randomBytes(L.valueBytes);
  const records = (size: number): ReturnType<typeof makeMessages> => makeMessages(p.recordsPerBatch, Array.from({ length: 16 }, () => randomBytes(size)));
  const common = { timeLimitMs: p.runTimeLimitMs, signal: ctx.signal, brokerCpu: () => null };
  return [
    {
      slug: 'kafkajs-produce-1kb',
      title: `kafkajs produce 1 KB × ${p.recordsPerBatch}, ${p.inFlight} in flight`,
      async prepare(broker) {
        const kafka = benchKafka(broker.bootstrap, 'bench-profile');
        await createTopic(kafka, 'profile', 4 << 20);
        const batch = records(1024);
        return () => produceThroughput(kafka, { ...common, topic: 'profile', batch, batches: p.batchesPerRun[1024], inFlight: p.inFlight });
      },
    },
    {
      slug: 'kafkajs-paced-latency',
      title: `kafkajs produce at ${L.rate} rec/s, ${KAFKAJS_PER_SEND} records/send`,
      async prepare(broker) {
        const kafka = benchKafka(broker.bootstrap, 'bench-profile');
        await createTopic(kafka, 'profile', 1 << 20);
        return () => pacedProduceLatency(kafka, { ...common, topic: 'profile', rate: L.rate, durationMs: L.durationMs, recordsPerSend: KAFKAJS_PER_SEND, value });
      },
    },
    {
      slug: 'pre-encoded-produce-10kb',
      title: `pre-encoded produce 10 KB × ${p.recordsPerBatch}, ${p.inFlight} in flight`,
      async prepare(broker) {
        await createTopic(benchKafka(broker.bootstrap, 'bench-profile'), 'profile', 32 << 20);
        const frame = await encodeProduceFrame('profile', records(10240));
        const o = { ...common, frame, records: p.recordsPerBatch, bytes: p.recordsPerBatch * 10240, batches: p.batchesPerRun[10240], inFlight: p.inFlight };
        return () => preEncodedThroughput(broker.bootstrap, o);
      },
    },
    {
      slug: 'pre-encoded-paced-latency',
      title: `pre-encoded produce at ${L.rate} rec/s, 1 record/request`,
      async prepare(broker) {
        await createTopic(benchKafka(broker.bootstrap, 'bench-profile'), 'profile', 1 << 20);
        const frame = await encodeProduceFrame('profile', makeMessages(1, [value]));
        return () => preEncodedLatency(broker.bootstrap, { ...common, frame, rate: L.rate, durationMs: L.durationMs, recordsPerSend: 1 });
      },
    },
  ];
}

function formatIoStats(s: IoStats): string {
  const f = (x: number): string => x.toFixed(x < 1 ? 3 : 1);
  const lines = [`  broker I/O over ${s.seconds.toFixed(1)} s (ms; total = time the caller waited):`];
  const loop = s.eventLoopDelay;
  lines.push(`    event-loop delay          p50 ${f(loop.p50Ms)}  p99 ${f(loop.p99Ms)}  max ${f(loop.maxMs)}`);
  for (const [name, t] of Object.entries(s.calls)) {
    if (t.count === 0) continue;
    const share = name.includes('async') ? '' : `, ${((t.totalMs / 1000 / s.seconds) * 100).toFixed(1)}% of the loop's time`;
    lines.push(`    ${name.padEnd(24)}  ${String(t.count).padStart(7)} calls  total ${f(t.totalMs)}${share}  p50 ${f(t.p50Ms)}  p99 ${f(t.p99Ms)}  max ${f(t.maxMs)}`);
  }
  return lines.join('\n');
}

async function profileOne(ctx: BenchContext, session: Session, w: ProfiledWorkload, dir: string): Promise<string[]> {
  const broker = await startBrokerTarget('child-process', { dataDir: path.join(ctx.tmpDir, `profile-${w.slug}`), cpuProfileDir: dir, instrumented: true });
  const window = { fromUs: 0, toUs: 0 };
  let io: IoStats | undefined;
  try {
    const workload = await w.prepare(broker);
    broker.resetIoStats?.();
    await session.post('Profiler.start');
    window.fromUs = hrtimeUs();
    await workload();
    window.toUs = hrtimeUs();
    const { profile } = await session.post('Profiler.stop');
    io = await broker.ioStats?.();
    fs.writeFileSync(path.join(dir, 'client.cpuprofile'), JSON.stringify(profile));
  } finally {
    await broker.close();
  }
  // The broker's main thread writes CPU.<date>.<time>.<pid>.0.<seq>.cpuprofile on exit.
  const brokerFile = fs.readdirSync(dir).find((f) => /^CPU\..*\.0\.\d+\.cpuprofile$/.test(f));
  const notes = [`profile: ${w.title} (${path.relative(process.cwd(), dir)})`];
  if (io) notes.push(formatIoStats(io));
  notes.push(formatProfileSummary('  bench process (client)', summarizeProfile(path.join(dir, 'client.cpuprofile'), 12, window)));
  if (brokerFile) notes.push(formatProfileSummary('  broker process', summarizeProfile(path.join(dir, brokerFile), 12, window)));
  else notes.push('  broker profile missing (the child did not exit cleanly)');
  return notes;
}

/** Runs each workload under both profilers; returns the summaries as note paragraphs. */
export async function profileBrokerWorkloads(ctx: BenchContext, p: BrokerBenchParams): Promise<string[]> {
  const root = path.join(ctx.outDir, `profiles-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  const notes: string[] = [];
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  try {
    for (const w of workloads(ctx, p)) {
      if (ctx.signal.aborted) break;
      ctx.progress(`profiling: ${w.title}`);
      const dir = path.join(root, w.slug);
      fs.mkdirSync(dir, { recursive: true });
      notes.push(...(await profileOne(ctx, session, w, dir)));
    }
  } finally {
    session.disconnect();
  }
  return notes;
}
