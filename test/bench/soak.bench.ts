/**
 * Soak (issue 16 "Done when", issue 10 §5): the pipeline as `npm start` runs it (broker,
 * ingest, renderer, dispatcher, scheduler, each its own process) takes normal traffic through
 * the API for a bounded time, mixed with poison inputs — templates that throw, messages that
 * render larger than the dispatch topic allows, records that are not requests, batches no codec
 * decodes — while a harness SIGKILLs a random stage every few seconds and restarts it. Some
 * recipients are greylisted (451 once) and some bounce (550).
 *
 * Reports: lost (accepted and never seen again: must be 0), stuck (accepted without a terminal
 * outcome — sent, bounced, expired, suppressed or failed/dead-lettered — at the end: must be 0),
 * the duplicate delivery rate at the relay (target < 0.1 %), and accepted → sent p99 under the
 * chaos beside the same latency in a warm-up without kills (the baseline).
 *
 * Size: POSTLINE_BENCH_SOAK_MESSAGES (default 20,000; --quick 1,500) spread evenly over
 * POSTLINE_BENCH_SOAK_MINUTES (default 4, at most 60; --quick 1). The CI crash soak
 * (test/faults/crash-soak.test.ts) stays at 3,000 messages.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { benchRow, type BenchContext, type BenchSuite, type SuiteResult } from './bench-suite.js';
import { latencyPercentiles, summarize } from './bench-stats.js';
import { duplicatesOf, outcomesOf, sentLatencies, type Accepted } from './soak-outcomes.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { waitFor } from '../helpers/broker.js';
import { seededRandom } from '../helpers/seeded-random.js';
import { API_KEY, FaultPipeline, messageIdOf, type Stage } from '../faults/fault-pipeline.js';
import { corruptStoredBatch, produceGzipBatch } from '../faults/poison-records.js';
import { Topics } from '../../shared/topics.js';
import { PRIORITIES } from '../../shared/config.js';

const STAGES: Stage[] = ['ingest', 'renderer', 'dispatcher', 'scheduler'];
const BATCH = 50;
const SENDERS = 4;
/** The first share of the messages goes in without kills: the latency baseline. */
const WARMUP_SHARE = 0.1;
const KILL_EVERY_MS = 8000;
const SETTLE_MS = 5 * 60_000;
const SEED = 20261203;

interface Params {
  messages: number;
  minutes: number;
}

function params(quick: boolean): Params {
  const minutes = Math.min(60, Math.max(0.5, Number(process.env.POSTLINE_BENCH_SOAK_MINUTES ?? (quick ? 1 : 4))));
  const messages = Math.max(100, Number(process.env.POSTLINE_BENCH_SOAK_MESSAGES ?? (quick ? 1500 : 20_000)));
  return { messages, minutes };
}

/** Message i of the mix: normal mail, greylisted and bouncing recipients, a throwing template, an oversized render. */
function message(i: number): { body: Record<string, unknown>; domains: string[]; kind: string } {
  const m = mix(i);
  // The same key on every retry: a batch retried after an ingest kill accepts nothing twice.
  return { ...m, body: { ...m.body, idempotencyKey: `soak-${SEED}-${i}` } };
}

function mix(i: number): { body: Record<string, unknown>; domains: string[]; kind: string } {
  if (i % 4000 === 1234) {
    // ~900 KB of UTF-8 that renders to ~1.2 MB: larger than the dispatch topic's 1 MiB.
    return { body: { from: 'soak@sender.test', to: [`big${i}@big.example`], subject: `big ${i}`, html: 'é'.repeat(450_000) }, domains: ['big.example'], kind: 'oversized' };
  }
  if (i % 500 === 7) return { body: { from: 'soak@sender.test', to: [`t${i}@d${i % 13}.example`], template: { name: 'soak-poison', data: {} } }, domains: [`d${i % 13}.example`], kind: 'template' };
  if (i % 97 === 3) return { body: { from: 'soak@sender.test', to: [`bounce${i % 7}@bounce.example`], subject: `bounce ${i}`, text: 'x' }, domains: ['bounce.example'], kind: 'bounce' };
  const to = [`u${i}@d${i % 13}.example`];
  if (i % 10 === 0) to.push(`v${i}@e${i % 5}.example`);
  return { body: { from: 'soak@sender.test', to, subject: `soak ${i}`, text: `message ${i}` }, domains: to.map((a) => a.split('@')[1]), kind: 'normal' };
}

async function post(pipeline: FaultPipeline, path: string, body: unknown, method = 'POST', idempotencyKey?: string): Promise<Response> {
  return fetch(`${pipeline.ingestUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json', ...(idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}) },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(20_000),
  });
}

interface Traffic {
  accepted: Accepted[];
  acceptedAt: Map<string, number>;
  /** Poison messages refused at the door (e.g. a 413 for what cannot be dispatched): status and body. */
  refused: string[];
  kinds: Record<string, number>;
}

/** Sends messages [from, to) paced to end at `endAt`, retrying each until accepted (or refused with a 4xx). */
async function sendRange(pipeline: FaultPipeline, from: number, to: number, endAt: number, traffic: Traffic, signal: AbortSignal): Promise<void> {
  const start = Date.now();
  const next = { i: from };
  const lane = async (): Promise<void> => {
    while (next.i < to && !signal.aborted) {
      const first = next.i;
      const last = Math.min(to, first + BATCH);
      next.i = last;
      const due = start + ((first - from) / (to - from)) * (endAt - start);
      if (due > Date.now()) await sleep(due - Date.now());
      let todo = Array.from({ length: last - first }, (_, k) => first + k);
      while (todo.length > 0 && !signal.aborted) {
        const left: number[] = [];
        const normal = todo.filter((i) => message(i).kind !== 'oversized');
        for (const i of todo.filter((i) => message(i).kind === 'oversized')) {
          // One message per request: the idempotency key goes in the header there.
          const { idempotencyKey, ...single } = message(i).body;
          const res = await post(pipeline, '/v1/emails', single, 'POST', String(idempotencyKey)).catch(() => undefined);
          const body = res ? ((await res.json().catch(() => ({}))) as { id?: string }) : {};
          if (res?.status === 202 && body.id) record(traffic, i, body.id);
          else if (res && res.status >= 400 && res.status < 500) traffic.refused.push(`${res.status} ${JSON.stringify(body).slice(0, 200)}`);
          else left.push(i);
        }
        const ids = normal.length ? await pipeline.sendBatch(normal.map((i) => message(i).body)).catch(() => normal.map(() => undefined)) : [];
        normal.forEach((i, k) => (ids[k] ? record(traffic, i, ids[k]!) : left.push(i)));
        todo = left;
        if (todo.length > 0) await sleep(250);
      }
    }
  };
  await Promise.all(Array.from({ length: SENDERS }, lane));
}

function record(traffic: Traffic, i: number, id: string): void {
  const m = message(i);
  traffic.accepted.push({ id, domains: m.domains });
  traffic.acceptedAt.set(id, Date.now());
  traffic.kinds[m.kind] = (traffic.kinds[m.kind] ?? 0) + 1;
}

/** Kills a random stage every KILL_EVERY_MS until `until()`; each renderer kill also plants a batch no codec decodes and a garbage record. */
async function chaos(pipeline: FaultPipeline, until: () => boolean, signal: AbortSignal, poison: { undecodable: number; garbage: number }): Promise<void> {
  const rand = seededRandom(SEED);
  while (!until() && !signal.aborted) {
    await sleep(KILL_EVERY_MS);
    const stage = STAGES[Math.floor(rand() * STAGES.length)];
    if (stage !== 'renderer') {
      await pipeline.crashStage(stage, false);
      continue;
    }
    await pipeline.procs.get('renderer')!.kill('SIGKILL');
    pipeline.restarts.push('renderer');
    const partition = poison.undecodable % 3;
    const { compressed } = await produceGzipBatch(pipeline.broker.bootstrap, Topics.requested, partition, [{ value: 'x' }, { value: 'y' }]);
    corruptStoredBatch(pipeline.dataDir, Topics.requested, partition, compressed);
    await pipeline.producer.send({ topic: Topics.requested, acks: -1, messages: [{ value: `garbage ${randomUUID()}` }] });
    poison.undecodable++;
    poison.garbage++;
    await pipeline.startStage('renderer', false);
  }
}

async function run(ctx: BenchContext): Promise<SuiteResult> {
  const p = params(ctx.quick);
  const failures: string[] = [];
  let sink: SmtpSink | undefined;
  let pipeline: FaultPipeline | undefined;
  try {
    sink = await startSmtpSink({
      greetingDelay: false,
      script: (rcpt, c) => (rcpt.startsWith('bounce') ? 550 : Number(/\d+/.exec(rcpt)?.[0]) % 25 === 0 && c.attempt === 1 ? 451 : 250),
    });
    pipeline = await FaultPipeline.start({
      stages: STAGES,
      partitions: 3,
      // Dispatch topics at Kafka's default 1 MiB (a cluster whose topics predate Postline's
      // sizing), so the oversized render is really too large for the next topic.
      topicConfigs: Object.fromEntries(PRIORITIES.map((p) => [Topics.dispatch(p), { 'max.message.bytes': '1048588' }])),
      env: {
        POSTLINE_DISPATCHER_RELAY_HOST: sink.host,
        POSTLINE_DISPATCHER_RELAY_PORT: String(sink.port),
        POSTLINE_RETRY_DELAY1M_MS: '1000',
        POSTLINE_RETRY_DELAY5M_MS: '2000',
        POSTLINE_RETRY_DELAY15M_MS: '3000',
        POSTLINE_RETRY_DELAY1H_MS: '4000',
        POSTLINE_INGEST_PRODUCE_TIMEOUT_MS: '5000',
        POSTLINE_INGEST_IDEMPOTENCY_LEASE_MS: '6000',
      },
    });
    const put = await post(pipeline, '/v1/templates/soak-poison', { subject: 'Hi', html: '<p>{{account.owner.name}}</p>' }, 'PUT');
    if (!put.ok) throw new Error(`template PUT answered ${put.status}`);
    const traffic: Traffic = { accepted: [], acceptedAt: new Map(), refused: [], kinds: {} };
    const started = Date.now();
    const endAt = started + p.minutes * 60_000;
    const warmupEnd = Math.floor(p.messages * WARMUP_SHARE);
    ctx.progress(`warm-up: ${warmupEnd} messages without kills`);
    await sendRange(pipeline, 0, warmupEnd, started + (endAt - started) * WARMUP_SHARE, traffic, ctx.signal);
    const chaosFrom = Date.now();
    ctx.progress(`soak: ${p.messages - warmupEnd} messages over ${((endAt - chaosFrom) / 60_000).toFixed(1)} min, a stage killed every ${KILL_EVERY_MS / 1000} s`);
    let sending = true;
    const poison = { undecodable: 0, garbage: 0 };
    const sent = sendRange(pipeline, warmupEnd, p.messages, endAt, traffic, ctx.signal).finally(() => (sending = false));
    await Promise.all([sent, chaos(pipeline, () => !sending, ctx.signal, poison)]);
    const acceptedAll = Date.now();
    ctx.progress(`${traffic.accepted.length} accepted; waiting for every one to end (restarts: ${pipeline.restarts.length})`);
    await pipeline.allReady(120_000).catch(() => failures.push('not every stage was ready after the chaos'));
    const deadIds = (): Set<string> => new Set(pipeline!.deadLetters().flatMap((d) => (d.messageId ? [d.messageId] : [])));
    const deadCount = (code: string): number => pipeline!.deadLetters().filter((d) => d.code === code).length;
    const settledAll = (): boolean =>
      outcomesOf(traffic.accepted, pipeline!.events(), deadIds()).stuck.length === 0 && deadCount('UNDECODABLE_BATCH') >= poison.undecodable && deadCount('VALIDATION_FAILED') >= poison.garbage;
    await waitFor(() => settledAll() || ctx.signal.aborted, SETTLE_MS, 'every accepted message and planted poison record ended').catch(() => undefined);
    const settled = Date.now();
    const outcomes = outcomesOf(traffic.accepted, pipeline.events(), deadIds());
    const dups = duplicatesOf(sink.messages.map((m) => ({ messageId: messageIdOf(m.raw), to: m.to })));
    const deadByCode: Record<string, number> = {};
    for (const d of pipeline.deadLetters()) deadByCode[d.code] = (deadByCode[d.code] ?? 0) + 1;
    const warm = latencyPercentiles(sentLatencies(pipeline.events(), traffic.acceptedAt, 0, chaosFrom));
    const hot = latencyPercentiles(sentLatencies(pipeline.events(), traffic.acceptedAt, chaosFrom));
    const accepted = summarize([outcomes.accepted]);
    const group = `${p.messages} messages over ${p.minutes} min, ${pipeline.restarts.length} stage kills`;
    const rows = [
      benchRow({ group, name: 'lost (accepted, never seen again)', unit: 'messages', better: 'lower', value: summarize([outcomes.lost.length]), baseline: { name: 'accepted', unit: 'messages', value: accepted }, target: { op: '<', value: 1 } }),
      benchRow({ group, name: 'stuck (accepted, no terminal outcome)', unit: 'messages', better: 'lower', value: summarize([outcomes.stuck.length]), baseline: { name: 'accepted', unit: 'messages', value: accepted }, target: { op: '<', value: 1 } }),
      benchRow({
        group,
        name: 'duplicate deliveries at the relay',
        unit: '%',
        better: 'lower',
        value: summarize([(100 * dups.duplicates) / Math.max(1, dups.deliveries)]),
        baseline: { name: 'deliveries', unit: 'deliveries', value: summarize([dups.deliveries]) },
        target: { op: '<', value: 0.1 },
      }),
      benchRow({
        group,
        name: 'accepted → sent p99 under kills and poison',
        unit: 'ms',
        better: 'lower',
        value: summarize([hot.p99]),
        also: [{ label: 'p50', unit: 'ms', value: summarize([hot.p50]) }],
        baseline: { name: 'the same in the warm-up, no kills', unit: 'ms', value: summarize([warm.p99]) },
      }),
    ];
    if (outcomes.lost.length > 0) failures.push(`${outcomes.lost.length} accepted messages lost, e.g. ${outcomes.lost.slice(0, 3).join(', ')}`);
    if (outcomes.stuck.length > 0) failures.push(`${outcomes.stuck.length} accepted messages stuck, e.g. ${outcomes.stuck.slice(0, 3).join(', ')}`);
    for (const [code, planted] of [['UNDECODABLE_BATCH', poison.undecodable], ['VALIDATION_FAILED', poison.garbage]] as const) {
      if ((deadByCode[code] ?? 0) < planted) failures.push(`${planted} ${code} poison records planted, ${deadByCode[code] ?? 0} dead-lettered`);
    }
    return {
      rows,
      params: { ...p, warmupShare: WARMUP_SHARE, killEveryMs: KILL_EVERY_MS, seed: SEED },
      notes: [
        `accepted ${outcomes.accepted} (${Object.entries(traffic.kinds).map(([k, n]) => `${k} ${n}`).join(', ')}); refused at the door ${traffic.refused.length}${traffic.refused.length ? ` (${traffic.refused[0]})` : ''}; ` +
          `all accepted in ${((acceptedAll - started) / 1000).toFixed(0)} s, settled ${((settled - acceptedAll) / 1000).toFixed(0)} s later`,
        `outcomes per (message, domain): ${Object.entries(outcomes.byType).map(([k, n]) => `${k} ${n}`).join(', ')}`,
        `dead letters by code: ${Object.entries(deadByCode).map(([k, n]) => `${k} ${n}`).join(', ')}; planted outside the API: ${poison.undecodable} undecodable batches, ${poison.garbage} garbage records`,
        `duplicates ${dups.duplicates} of ${dups.deliveries} deliveries; kills: ${pipeline.restarts.join(' ')}`,
      ],
      details: { warm, hot, outcomes: { ...outcomes, stuck: outcomes.stuck.slice(0, 50), lost: outcomes.lost.slice(0, 50) }, deadByCode, restarts: pipeline.restarts },
      failures,
    };
  } finally {
    await pipeline?.close(failures.length > 0);
    if (failures.length > 0 && pipeline) ctx.progress(`stage logs kept in ${pipeline.logDir}`);
    await sink?.close();
  }
}

export const suite: BenchSuite = {
  name: 'soak',
  description: 'npm start-like pipeline under normal traffic, poison inputs and random stage kills: lost, stuck, duplicate rate',
  timeLimitMs: { full: (params(false).minutes + 12) * 60_000, quick: (params(true).minutes + 8) * 60_000 },
  run,
};
