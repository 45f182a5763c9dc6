/**
 * `npm run bench -- suppression`: the suppression list the dispatcher checks before any SMTP,
 * with 1,000,000 entries (issue 13's targets):
 *
 * - lookup: `SuppressionIndex.isSuppressed` (tenant-wide entry, then the list's entry, with
 *   expiry), half hits and half misses, in µs per lookup — beside `Set.has` on the same keys
 *   (already built strings) in the same run; target ≤ 5 µs;
 * - memory: heap growth of the index's map (keys and packed values) — beside a `Set` of the same
 *   keys; target ≤ 250 MB;
 * - cold start: the index read from the broker (in a child process, as in production) until it
 *   has caught up with the topic's end — beside a bare kafkajs consumer reading the same records
 *   to the end without doing anything with them (the client's own decoding limit); target ≤ 10 s;
 * - inbound DSN parsing: `parseBounce` on the bounce samples vs `mailparser.simpleParser` on the
 *   same messages in the same run (test/bench/dsn-parse.ts); targets ≥ 1,000/s and ≥ 0.8×.
 */
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import pino from 'pino';
import { benchRow, type BenchContext, type BenchRow, type BenchSuite, type SuiteResult } from './bench-suite.js';
import { summarize } from './bench-stats.js';
import { startBrokerTarget, type BrokerTarget } from './broker-targets.js';
import { benchKafka } from './kafka-workloads.js';
import { SUPPRESSION_VERSION, SuppressionContract, suppressionKey, type SuppressionReason } from '../../shared/contracts/suppression.js';
import { dsnParseBench } from './dsn-parse.js';
import { PackedSuppressionMap, SuppressionIndex, openSuppressionIndex, packSuppression } from '../../shared/suppressions/suppression-index.js';

interface Params {
  entries: number;
  lookups: number;
  partitions: number;
}
const FULL: Params = { entries: 1_000_000, lookups: 2_000_000, partitions: 4 };
const QUICK: Params = { entries: 100_000, lookups: 200_000, partitions: 4 };
const MB = 1024 * 1024;
const TOPIC = 'email.suppressions';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const TENANTS = ['acme', 'acme/eu', 'globex', 'initech'];
const REASONS: SuppressionReason[] = ['hard-bounce', 'hard-bounce', 'hard-bounce', 'complaint', 'unsubscribe', 'soft-bounce'];
const tenantOf = (i: number) => TENANTS[i % TENANTS.length];
const addressOf = (i: number) => `user${i}.${(i * 2654435761) % 100_000}@example${i % 997}.com`;
const reasonOf = (i: number) => REASONS[i % REASONS.length];

function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

/** Heap growth of a structure built by `build` (kept alive until measured). */
function heapDelta<T>(build: () => T): { mb: number; kept: T } {
  const before = heapAfterGc();
  const kept = build();
  return { mb: (heapAfterGc() - before) / MB, kept };
}

function buildIndexMap(n: number, soonMs: number): PackedSuppressionMap {
  const m = new PackedSuppressionMap();
  for (let i = 0; i < n; i++) {
    const reason = reasonOf(i);
    m.set(suppressionKey(tenantOf(i), addressOf(i), reason === 'unsubscribe' ? 'news' : undefined), packSuppression(reason, reason === 'soft-bounce' ? soonMs : undefined));
  }
  return m;
}

function buildSet(n: number): Set<string> {
  const s = new Set<string>();
  for (let i = 0; i < n; i++) s.add(suppressionKey(tenantOf(i), addressOf(i)));
  return s;
}

function lookupRows(ctx: BenchContext, p: Params): { rows: BenchRow[]; notes: string[] } {
  const now = Date.now();
  const mem = heapDelta(() => buildIndexMap(p.entries, now + 7 * 86_400_000));
  const setMem = heapDelta(() => buildSet(p.entries));
  ctx.progress(`index map: ${mem.mb.toFixed(0)} MB; Set: ${setMem.mb.toFixed(0)} MB`);
  const index = new SuppressionIndex(mem.kept);
  // Half the lookups hit (i < entries), half miss; scattered over the whole list.
  const probes = Array.from({ length: p.lookups }, (_, k) => (k * 7919) % (2 * p.entries));
  // Flat strings, as a decoded dispatch record holds them (JSON.parse), for both sides.
  const flat = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;
  const probeTenants = flat(probes.map(tenantOf));
  const probeAddresses = flat(probes.map(addressOf));
  const probeLists = probes.map((i) => (i % 2 ? 'news' : undefined));
  const probeKeys = flat(probes.map((i) => suppressionKey(tenantOf(i), addressOf(i))));
  const measured: number[] = [];
  const baseline: number[] = [];
  let hits = 0;
  let sink = 0;
  for (let run = 0; run < ctx.runs; run++) {
    let t0 = performance.now();
    hits = 0;
    for (let k = 0; k < probes.length; k++) if (index.isSuppressed(probeTenants[k], probeAddresses[k], probeLists[k], now)) hits++;
    measured.push(((performance.now() - t0) * 1000) / probes.length);
    t0 = performance.now();
    for (let k = 0; k < probes.length; k++) if (setMem.kept.has(probeKeys[k])) sink++;
    baseline.push(((performance.now() - t0) * 1000) / probes.length);
    ctx.progress(`lookup run ${run + 1}: ${measured.at(-1)!.toFixed(3)} µs (Set.has ${baseline.at(-1)!.toFixed(3)} µs)`);
  }
  const rows = [
    benchRow({
      group: `suppression index, ${p.entries.toLocaleString('en')} entries`,
      name: 'isSuppressed (tenant-wide + list entry, expiry)',
      unit: 'µs/lookup',
      better: 'lower',
      value: summarize(measured),
      baseline: { name: 'Set.has on the same keys (strings prebuilt)', unit: 'µs/lookup', value: summarize(baseline) },
      target: { op: '<', value: 5 },
    }),
    benchRow({
      group: `suppression index, ${p.entries.toLocaleString('en')} entries`,
      name: 'heap of the index (keys + packed values)',
      unit: 'MB',
      better: 'lower',
      value: summarize([mem.mb]),
      baseline: { name: 'a Set of the same keys', unit: 'MB', value: summarize([setMem.mb]) },
      target: { op: '<', value: 250 },
    }),
  ];
  return { rows, notes: [`${hits} of ${probes.length} lookups hit (${sink >= 0 ? 'Set baseline ran' : ''})`] };
}

async function produceEntries(ctx: BenchContext, broker: BrokerTarget, p: Params): Promise<number> {
  const kafka = benchKafka(broker.bootstrap, 'suppression-bench-producer');
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: p.partitions, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }], waitForLeaders: true });
  await admin.disconnect();
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const createdAt = new Date().toISOString();
  let bytes = 0;
  const chunk = 10_000;
  for (let i = 0; i < p.entries; i += chunk) {
    const messages = [];
    for (let j = i; j < Math.min(p.entries, i + chunk); j++) {
      const reason = reasonOf(j);
      const list = reason === 'unsubscribe' ? 'news' : undefined;
      const value = SuppressionContract.encode({ schemaVersion: SUPPRESSION_VERSION, tenant: tenantOf(j), address: addressOf(j), ...(list ? { list } : {}), reason, createdAt });
      bytes += value.length;
      messages.push({ key: suppressionKey(tenantOf(j), addressOf(j), list), value });
    }
    await producer.send({ topic: TOPIC, acks: -1, messages });
    if ((i / chunk) % 20 === 0) ctx.progress(`produced ${i + messages.length} suppression records`);
  }
  await producer.disconnect();
  return bytes;
}

/** The baseline: a bare kafkajs consumer reading every partition to its end, doing nothing per record. */
async function rawRead(broker: BrokerTarget, p: Params, run: number): Promise<number> {
  const kafka = benchKafka(broker.bootstrap, 'suppression-bench-raw');
  const admin = kafka.admin();
  await admin.connect();
  const ends = new Map((await admin.fetchTopicOffsets(TOPIC)).map((o) => [o.partition, BigInt(o.high) - 1n]));
  const consumer = kafka.consumer({ groupId: `suppression-bench-raw-${run}-${Date.now()}`, maxWaitTimeInMs: 250 });
  const t0 = performance.now();
  await consumer.connect();
  await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
  let seen = 0;
  const done = new Set<number>();
  await new Promise<void>((resolve) => {
    void consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        seen += batch.messages.length;
        if (BigInt(batch.lastOffset()) >= (ends.get(batch.partition) ?? -1n)) done.add(batch.partition);
        if (done.size === p.partitions) resolve();
      },
    });
  });
  const s = (performance.now() - t0) / 1000;
  await consumer.disconnect();
  await admin.deleteGroups([`suppression-bench-raw-${run}-${Date.now()}`]).catch(() => undefined);
  await admin.disconnect();
  if (seen < p.entries) throw new Error(`raw read saw ${seen} of ${p.entries}`);
  return s;
}

async function coldStartRows(ctx: BenchContext, p: Params): Promise<{ rows: BenchRow[]; notes: string[] }> {
  const broker = await startBrokerTarget('child-process', { dataDir: path.join(ctx.tmpDir, 'broker') });
  try {
    const bytes = await produceEntries(ctx, broker, p);
    const measured: number[] = [];
    const baseline: number[] = [];
    const heaps: number[] = [];
    const logger = pino({ level: 'warn' });
    for (let run = 0; run < ctx.runs; run++) {
      baseline.push(await rawRead(broker, p, run));
      const kafka = benchKafka(broker.bootstrap, 'suppression-bench-index');
      const before = heapAfterGc();
      const t0 = performance.now();
      const opened = await openSuppressionIndex({ kafka, logger, timeoutMs: 120_000 });
      measured.push((performance.now() - t0) / 1000);
      heaps.push((heapAfterGc() - before) / MB);
      if (opened.index.size !== p.entries) throw new Error(`index has ${opened.index.size} of ${p.entries} entries`);
      await opened.stop();
      ctx.progress(`cold start run ${run + 1}: ${measured.at(-1)!.toFixed(2)} s (raw kafkajs read ${baseline.at(-1)!.toFixed(2)} s), heap +${heaps.at(-1)!.toFixed(0)} MB`);
    }
    const row = benchRow({
      group: `suppression index, ${p.entries.toLocaleString('en')} entries`,
      name: 'cold start: read email.suppressions to its end',
      unit: 's',
      better: 'lower',
      value: summarize(measured),
      also: [{ label: 'heap after load', unit: 'MB', value: summarize(heaps) }],
      baseline: { name: 'bare kafkajs consumer reading the same records', unit: 's', value: summarize(baseline) },
      target: { op: '<', value: 10 },
    });
    return { rows: [row], notes: [`${(bytes / MB).toFixed(0)} MB of records on ${p.partitions} partitions (${(bytes / p.entries).toFixed(0)} bytes each)`] };
  } finally {
    await broker.close();
  }
}

export const suite: BenchSuite = {
  name: 'suppression',
  description: 'suppression list: lookup µs and memory with 1M entries, cold start of the index from the broker; inbound DSN parsing vs raw mailparser',
  timeLimitMs: { full: 20 * 60_000, quick: 5 * 60_000 },
  async run(ctx: BenchContext): Promise<SuiteResult> {
    const p = ctx.quick ? QUICK : FULL;
    const rows: BenchRow[] = [];
    const notes: string[] = [];
    const failures: string[] = [];
    for (const [name, part] of [
      ['lookup', async () => lookupRows(ctx, p)],
      ['cold start', () => coldStartRows(ctx, p)],
      ['dsn parsing', async () => ({ rows: await dsnParseBench({ messages: ctx.quick ? 1_000 : 5_000, runs: ctx.runs, signal: ctx.signal }), notes: [] as string[] })],
    ] as const) {
      try {
        const r = await part();
        rows.push(...r.rows);
        notes.push(...r.notes);
      } catch (err) {
        failures.push(`${name}: ${(err as Error).message}`);
      }
    }
    return { rows, params: { ...p }, notes, failures };
  },
};
