/**
 * The three groups of rows of the send-path benchmark, each measurement interleaved run by run
 * with the baseline it is read against:
 *
 * - stage isolation (tuned dispatcher): render stage vs raw Handlebars + MailComposer; dispatch
 *   stage vs raw nodemailer pooled sending; the same dispatch runs vs a new nodemailer connection
 *   per message (connection reuse); and a plain kafkajs implementation of each stage (the same
 *   libraries between a kafkajs consumer and producer) vs the raw libraries and vs the stage;
 * - the dispatcher at its default settings vs raw pooled sending with its connection count (and
 *   the plain kafkajs dispatcher at the same sizes);
 * - end to end (ingest → renderer → dispatcher, accepted → 250), fed through the batch endpoint
 *   and straight to email.requested, vs raw pooled sending.
 *
 * Each step also records peak RSS and CPU per process (send-path-process-sampler.ts).
 */
import { benchRow, type BenchContext, type BenchRow } from './bench-suite.js';
import { median, summarize } from './bench-stats.js';
import { cpuSnapshot, foreignCores, interferenceWarnings } from './machine-load.js';
import type { ProcessSampler, UsageReport } from './send-path-process-sampler.js';
import { plainKafkaDispatch, plainKafkaRender, rawNewConnectionSmtp, rawPooledSmtp, rawRender, type PlainKafkaTopics, type RawResult, type RawSmtpOptions } from './send-path-raw-baselines.js';
import { PARTITIONS, type Rig } from './send-path-rig.js';
import type { SinkProcess } from './send-path-sink.js';
import { dispatchStage, endToEndHttp, endToEndKafka, preloadDispatch, renderStage, type EndToEndRun, type StageRun } from './send-path-stages.js';
import { rawRenderer } from './send-path-workload.js';
import { hrtimeUs } from './cpu-profile-summary.js';

export interface SendPathParams {
  stageMessages: number;
  defaultsMessages: number;
  e2eMessages: number;
  /** New-connection-per-message baseline: at most this many messages or this long. */
  newConnMessages: number;
  newConnMs: number;
  batchSize: number;
  batchesInFlight: number;
  /** Longest one measurement may take before it fails. */
  runTimeoutMs: number;
}

/** The dispatcher settings the stage and end-to-end rows run with (defaults: 20 in flight, 20 connections). */
export const TUNED = { concurrency: 200, maxConnections: 32, reserveCritical: 4 };
export const TUNED_ENV = {
  POSTLINE_DISPATCHER_CONCURRENCY_TRANSACTIONAL: String(TUNED.concurrency),
  POSTLINE_DISPATCHER_FLEET_MAX_CONNECTIONS_PER_HOST: String(TUNED.maxConnections),
};
/** Connections transactional mail may hold in a fleet: the cap less what is reserved for critical. */
export const TUNED_CONNECTIONS = TUNED.maxConnections - TUNED.reserveCritical;
export const DEFAULTS = { concurrency: 20, connections: 20 - 4 };
/** The renderer's default records in flight; the raw render baseline keeps as many going. */
export const RENDERER_CONCURRENCY = 64;

export interface GroupContext {
  ctx: BenchContext;
  rig: Rig;
  sink: SinkProcess;
  sampler: ProcessSampler;
  p: SendPathParams;
  /** Per step name, per run: processes' usage (for the notes) and the messages moved. */
  usage: Map<string, Array<{ report: UsageReport; messages: number }>>;
  details: Record<string, unknown>;
  /** Findings printed under the table. */
  notes: string[];
  /** The last end-to-end run's time span in `process.hrtime` µs (the clock CPU profiles use). */
  e2eWindow?: { fromUs: number; toUs: number };
}

/** Runs `fn` per run, noting how busy other processes were meanwhile (the bench's children are its own). */
async function repeat(g: GroupContext, fn: (run: number) => Promise<void>): Promise<Array<number | null>> {
  const own = (): number => g.sampler.aliveCpuSeconds(process.pid);
  const foreign: Array<number | null> = [];
  for (let run = 0; run < g.ctx.runs; run++) {
    const before = cpuSnapshot(own());
    await fn(run);
    foreign.push(foreignCores(before, cpuSnapshot(own())));
  }
  return foreign;
}

/**
 * Runs one step, sampling processes from its start — or, with `fromReady`, from when the step
 * calls `ready` (its stage is up), so a stage's start-up is left out. A raw baseline's process
 * reports the CPU of its work alone (not its start-up and preparation), which replaces the
 * sampled figure.
 */
async function step<T extends RawResult | StageRun>(
  g: GroupContext,
  name: string,
  messages: number,
  fn: (ready: () => void, watch: (label: string) => (pid: number) => void) => Promise<T>,
  fromReady = false,
): Promise<T> {
  let window: { close(): UsageReport } | undefined;
  let helper: string | undefined;
  const ready = (): void => void (window ??= g.sampler.window());
  const watch = (label: string) => (pid: number) => {
    helper = label;
    g.sampler.watch(label, pid);
  };
  g.ctx.progress(name);
  if (!fromReady) ready();
  const value = await fn(ready, watch);
  ready();
  const usage = window!.close();
  if (helper && usage.byLabel[helper] && 'cpuSeconds' in value) Object.assign(usage.byLabel[helper], { cpuSeconds: value.cpuSeconds, wallSeconds: value.seconds });
  const runs = g.usage.get(name) ?? [];
  runs.push({ report: usage, messages: 'count' in value ? value.count : messages });
  g.usage.set(name, runs);
  return value;
}

const rates = (rs: Array<{ rate: number }>): number[] => rs.map((r) => r.rate);
const steady = (rs: StageRun[]): number[] => rs.map((r) => r.steadyRate);

function truncation(label: string, rs: RawResult[]): string[] {
  return rs.some((r) => r.truncated) ? [`${label}: a run stopped at its time limit before its count`] : [];
}

interface IsolationRuns {
  rawRender: RawResult[];
  plainRender: RawResult[];
  render: StageRun[];
  rawSmtp: RawResult[];
  plainDispatch: RawResult[];
  dispatch: StageRun[];
  newConn: RawResult[];
}

/** The plain kafkajs stages' own topics: their events, the renderer's dispatch records, and an input topic per run (a fresh group reads only that run's). */
const PLAIN_EVENTS = 'bench.plain-kafka.events';
const PLAIN_DISPATCH = 'bench.plain-kafka.dispatch';

/** A plain kafkajs stage's input topic for run `tag`, created; the caller pre-loads it. */
async function plainKafkaTopics(rig: Rig, tag: string): Promise<PlainKafkaTopics> {
  const inTopic = `bench.plain-kafka.in.${tag}`;
  await rig.createTopics([inTopic, PLAIN_EVENTS, PLAIN_DISPATCH]);
  return { bootstrap: rig.bootstrap, inTopic, eventsTopic: PLAIN_EVENTS, partitions: PARTITIONS };
}

/** 200 distinct messages rendered by the raw libraries, as dispatch records carry them. */
async function sampleRaws(tag: string): Promise<string[]> {
  const render = rawRenderer();
  return Promise.all(Array.from({ length: 200 }, async (_, i) => (await render(tag, i)).toString()));
}

/** One run of the plain kafkajs dispatcher: n dispatch records of `raws` pre-loaded on its own topic, sent with `smtp`'s sizes. */
async function plainDispatchStep(g: GroupContext, name: string, tag: string, raws: string[], smtp: RawSmtpOptions): Promise<RawResult> {
  const topics = await plainKafkaTopics(g.rig, `${tag}-dispatch`);
  await preloadDispatch(g.rig, `${tag}-plain-dispatch`, smtp.n, raws, topics.inTopic);
  return step(g, name, smtp.n, (_, w) => plainKafkaDispatch(g.sink, { ...smtp, tag: `${tag}-plain-dispatch`, ...topics }, w('kafkajs dispatcher')));
}

/** Per run: raw render, plain kafkajs renderer, render stage, raw pooled SMTP, plain kafkajs dispatcher, dispatch stage, new connection per message. */
async function measureIsolation(g: GroupContext, n: number): Promise<{ r: IsolationRuns; foreign: Array<number | null> }> {
  const { p, rig, sink, ctx } = g;
  const r: IsolationRuns = { rawRender: [], plainRender: [], render: [], rawSmtp: [], plainDispatch: [], dispatch: [], newConn: [] };
  // The MIME the plain kafkajs dispatcher sends (the dispatch stage sends what the render stage wrote).
  const raws = await sampleRaws('plain');
  const foreign = await repeat(g, async (run) => {
    const tag = `iso${run}`;
    r.rawRender.push(await step(g, 'raw render', n, (_, w) => rawRender({ tag: `${tag}-raw`, n, concurrency: RENDERER_CONCURRENCY, timeLimitMs: p.runTimeoutMs }, w('raw render'))));
    const renderIn = await plainKafkaTopics(rig, `${tag}-render`);
    await rig.preloadRequested(`${tag}-plain-render`, n, 500, renderIn.inTopic);
    const plain = { tag, n, concurrency: RENDERER_CONCURRENCY, timeLimitMs: p.runTimeoutMs, ...renderIn, outTopic: PLAIN_DISPATCH };
    r.plainRender.push(await step(g, 'kafkajs renderer', n, (_, w) => plainKafkaRender(plain, w('kafkajs renderer'))));
    r.render.push(await step(g, 'render stage', n, (ready) => renderStage(rig, tag, n, p.runTimeoutMs, ctx.signal, ready), true));
    const smtp = { n, concurrency: TUNED.concurrency, maxConnections: TUNED_CONNECTIONS, timeLimitMs: p.runTimeoutMs, signal: ctx.signal };
    r.rawSmtp.push(await step(g, 'raw pooled SMTP', n, (_, w) => rawPooledSmtp(sink, { tag: `${tag}-smtp`, ...smtp }, w('raw smtp'))));
    r.plainDispatch.push(await plainDispatchStep(g, 'kafkajs dispatcher', tag, raws, { tag, ...smtp }));
    r.dispatch.push(await step(g, 'dispatch stage', n, (ready) => dispatchStage(rig, sink, n, TUNED_ENV, p.runTimeoutMs, ctx.signal, ready), true));
    const nc = { tag: `${tag}-new`, n: p.newConnMessages, concurrency: TUNED_CONNECTIONS, timeLimitMs: p.newConnMs };
    r.newConn.push(await step(g, 'new connection per message', p.newConnMessages, (_, w) => rawNewConnectionSmtp(sink, nc, w('raw smtp new-conn'))));
  });
  return { r, foreign };
}

/** The plain kafkajs dispatcher against the pool alone, and the dispatch stage against it. */
function plainDispatchRows(group: string, dispatch: StageRun[], plain: RawResult[], poolName: string, pool: ReturnType<typeof summarize>): BenchRow[] {
  return [
    benchRow({
      group,
      name: 'plain kafkajs dispatcher: the same pool, records in, a sent event out (acks=-1)',
      unit: 'msgs/s',
      better: 'higher',
      value: summarize(rates(plain)),
      baseline: { name: poolName, unit: 'msgs/s', value: pool },
    }),
    benchRow({
      group,
      name: 'dispatch stage relative to the plain kafkajs dispatcher',
      unit: 'msgs/s',
      better: 'higher',
      value: summarize(steady(dispatch)),
      baseline: { name: 'plain kafkajs dispatcher', unit: 'msgs/s', value: summarize(rates(plain)) },
    }),
  ];
}

/** Render stage, dispatch stage and connection reuse, each stage in its own process. */
export async function isolationRows(g: GroupContext): Promise<BenchRow[]> {
  const n = g.p.stageMessages;
  const { r, foreign } = await measureIsolation(g, n);
  g.details.isolation = r;
  const ms = (xs: Array<number | undefined>): string => `${(median(xs.map((x) => x ?? Number.NaN)) / 1000).toFixed(1)} s`;
  g.notes.push(
    `stage start-up, spawn → "service ready" (median): renderer ${ms(r.render.map((x) => x.startupMs))}, dispatcher ${ms(r.dispatch.map((x) => x.startupMs))} ` +
      '(the dispatcher first reads the last 2 minutes of email.events into its delivery ledger); stage rates count from the first output to the last, start-up excluded',
  );
  g.notes.push(
    'plain kafkajs stages (send-path-raw-child.ts), each in a process like the raw baselines\': the same libraries between a kafkajs consumer and producer, written plainly — the renderer ' +
      'renders 64 of a fetched batch at once and produces their dispatch records and rendered events, the dispatcher sends its share of the in-flight count through the pool and ' +
      'produces a sent event each; acks=-1, offsets committed by kafkajs, no validation, contracts, metrics or logs. Plain / raw is what reading from and writing to Kafka leaves of ' +
      'the raw rate for such an implementation; stage / plain is how Postline\'s stage, with all it does besides, compares with it',
  );
  const warnings = interferenceWarnings(foreign);
  const group = `stage isolation: each stage its own process, ${n.toLocaleString('en')} messages pre-loaded on its input topic`;
  const rawSmtpValue = summarize(rates(r.rawSmtp));
  const newConnValue = summarize(rates(r.newConn));
  return [
    benchRow({
      group,
      name: `render stage: email.requested → dispatch records (concurrency ${RENDERER_CONCURRENCY})`,
      unit: 'msgs/s',
      better: 'higher',
      value: summarize(steady(r.render)),
      also: [{ label: 'from ready', unit: 'msgs/s', value: summarize(rates(r.render)) }],
      baseline: { name: `Handlebars + MailComposer, ${RENDERER_CONCURRENCY} at once`, unit: 'msgs/s', value: summarize(rates(r.rawRender)) },
      target: { op: '>=', value: 0.8 * median(rates(r.rawRender)) },
      warnings: [...warnings, ...truncation('raw render', r.rawRender)],
    }),
    benchRow({
      group,
      name: 'plain kafkajs renderer: the same rendering, requests in, records out (acks=-1)',
      unit: 'msgs/s',
      better: 'higher',
      value: summarize(rates(r.plainRender)),
      baseline: { name: `Handlebars + MailComposer, ${RENDERER_CONCURRENCY} at once`, unit: 'msgs/s', value: summarize(rates(r.rawRender)) },
      warnings: truncation('kafkajs renderer', r.plainRender),
    }),
    benchRow({
      group,
      name: 'render stage relative to the plain kafkajs renderer',
      unit: 'msgs/s',
      better: 'higher',
      value: summarize(steady(r.render)),
      baseline: { name: 'plain kafkajs renderer', unit: 'msgs/s', value: summarize(rates(r.plainRender)) },
    }),
    benchRow({
      group,
      name: `dispatch stage: dispatch records → 250 (${TUNED.concurrency} in flight, ≤ ${TUNED_CONNECTIONS} connections)`,
      unit: 'msgs/s',
      better: 'higher',
      value: summarize(steady(r.dispatch)),
      baseline: { name: `nodemailer pool, ${TUNED_CONNECTIONS} connections, ${TUNED.concurrency} in flight`, unit: 'msgs/s', value: rawSmtpValue },
      target: { op: '>=', value: 0.8 * rawSmtpValue.median },
      warnings,
    }),
    ...plainDispatchRows(group, r.dispatch, r.plainDispatch, `nodemailer pool, ${TUNED_CONNECTIONS} connections, ${TUNED.concurrency} in flight`, rawSmtpValue),
    benchRow({
      group,
      name: `connection reuse: the dispatcher's fleet (same runs as above)`,
      unit: 'msgs/s',
      better: 'higher',
      value: summarize(steady(r.dispatch)),
      baseline: { name: `nodemailer, new connection per message, ${TUNED_CONNECTIONS} at once`, unit: 'msgs/s', value: newConnValue },
      target: { op: '>=', value: 5 * newConnValue.median },
      // Bounded by time as much as by count: a rate either way, not a truncated run.
      warnings,
    }),
  ];
}

/** The dispatcher with no settings changed, on records produced straight to its topic. */
export async function defaultsRows(g: GroupContext): Promise<BenchRow[]> {
  const { p, rig, sink, ctx } = g;
  const n = p.defaultsMessages;
  const raws = await sampleRaws('defaults');
  const r = { rawSmtp: [] as RawResult[], plainDispatch: [] as RawResult[], dispatch: [] as StageRun[] };
  const foreign = await repeat(g, async (run) => {
    const tag = `def${run}`;
    const smtp = { tag: `${tag}-smtp`, n, concurrency: DEFAULTS.concurrency, maxConnections: DEFAULTS.connections, timeLimitMs: p.runTimeoutMs, signal: ctx.signal };
    r.rawSmtp.push(await step(g, 'raw pooled SMTP (default sizes)', n, (_, w) => rawPooledSmtp(sink, smtp, w('raw smtp'))));
    r.plainDispatch.push(await plainDispatchStep(g, 'kafkajs dispatcher (default sizes)', tag, raws, smtp));
    await preloadDispatch(rig, tag, n, raws);
    r.dispatch.push(await step(g, 'dispatch stage (defaults)', n, (ready) => dispatchStage(rig, sink, n, {}, p.runTimeoutMs, ctx.signal, ready), true));
  });
  g.details.defaults = r;
  const baseline = summarize(rates(r.rawSmtp));
  const group = `dispatcher at its defaults (concurrency ${DEFAULTS.concurrency}, fleet of 20 with 4 reserved for critical), ${n.toLocaleString('en')} records`;
  const poolName = `nodemailer pool, ${DEFAULTS.connections} connections, ${DEFAULTS.concurrency} in flight`;
  return [
    benchRow({
      group,
      name: 'dispatch stage: dispatch records → 250',
      unit: 'msgs/s',
      better: 'higher',
      value: summarize(steady(r.dispatch)),
      baseline: { name: poolName, unit: 'msgs/s', value: baseline },
      target: { op: '>=', value: 0.8 * baseline.median },
      warnings: interferenceWarnings(foreign),
    }),
    ...plainDispatchRows(group, r.dispatch, r.plainDispatch, poolName, baseline),
  ];
}

/** Every stage running; accepted → 250 through the batch endpoint and through Kafka. */
export async function endToEndRows(g: GroupContext): Promise<BenchRow[]> {
  const { p, rig, sink, ctx } = g;
  const n = p.e2eMessages;
  const r = { rawSmtp: [] as RawResult[], http: [] as EndToEndRun[], kafka: [] as EndToEndRun[] };
  await rig.startStage('ingest');
  await rig.startStage('renderer');
  await rig.startStage('dispatcher', TUNED_ENV);
  let foreign: Array<number | null>;
  try {
    foreign = await repeat(g, async (run) => {
      const tag = `e2e${run}`;
      const smtp = { tag: `${tag}-smtp`, n, concurrency: TUNED.concurrency, maxConnections: TUNED_CONNECTIONS, timeLimitMs: p.runTimeoutMs, signal: ctx.signal };
      r.rawSmtp.push(await step(g, 'raw pooled SMTP (e2e)', n, (_, w) => rawPooledSmtp(sink, smtp, w('raw smtp'))));
      const fromUs = hrtimeUs();
      r.http.push(await step(g, 'end to end via ingest', n, () => endToEndHttp(rig, sink, `${tag}-http`, n, p.batchSize, p.batchesInFlight, p.runTimeoutMs, ctx.signal)));
      r.kafka.push(await step(g, 'end to end via email.requested', n, () => endToEndKafka(rig, sink, `${tag}-kafka`, n, p.runTimeoutMs, ctx.signal)));
      g.e2eWindow = { fromUs, toUs: hrtimeUs() };
    });
  } finally {
    for (const s of ['ingest', 'renderer', 'dispatcher'] as const) await rig.stopStage(s);
  }
  g.details.endToEnd = r;
  const warnings = interferenceWarnings(foreign);
  const group = `end to end: ingest → renderer → dispatcher (${TUNED.concurrency} in flight, ≤ ${TUNED_CONNECTIONS} connections), each its own process, ${n.toLocaleString('en')} messages`;
  const baseline = { name: `nodemailer pool, ${TUNED_CONNECTIONS} connections (raw SMTP)`, unit: 'msgs/s', value: summarize(rates(r.rawSmtp)) };
  return [
    benchRow({
      group,
      name: `accepted → 250, POST /v1/emails/batch (${p.batchSize} per request, ${p.batchesInFlight} in flight)`,
      unit: 'msgs/s',
      better: 'higher',
      value: summarize(rates(r.http)),
      also: [{ label: 'accepted', unit: 'msgs/s', value: summarize(r.http.map((x) => x.acceptRate ?? Number.NaN)) }],
      baseline,
      target: { op: '>=', value: 1500 },
      warnings,
    }),
    benchRow({
      group,
      name: 'produced → 250, EmailRequested straight to email.requested',
      unit: 'msgs/s',
      better: 'higher',
      value: summarize(rates(r.kafka)),
      also: [{ label: 'produced', unit: 'msgs/s', value: summarize(r.kafka.map((x) => x.acceptRate ?? Number.NaN)) }],
      baseline,
      target: { op: '>=', value: 1500 },
      warnings,
    }),
  ];
}
