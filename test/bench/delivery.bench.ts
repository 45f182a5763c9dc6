/**
 * Direct-delivery benchmark (issue 12), built of parts so others can be added beside the
 * first one (shaping accuracy, DNS queries, isolation). Each part returns its own rows, notes
 * and details; `suite.run` concatenates them.
 *
 * Part "dkim": the render stage's own work per message — decode, checks, MIME composition
 * and, when configured, DKIM signing — through `Renderer.handle` with an in-memory producer
 * (no Kafka, so the signing cost is not hidden behind broker round trips), for RSA-2048 and
 * Ed25519 keys beside the same messages unsigned, interleaved run by run. Messages are ~3 KB of
 * HTML + text with List-Unsubscribe headers. The issue's end-to-end target (signed ≥ 0.85× of
 * unsigned) is looser than this one: here signing is the only difference and nothing else waits.
 *
 * Part "dkim-e2e": the issue's measurement. Three pipelines (broker, ingest, renderer,
 * dispatcher as processes, an SMTP sink as the relay) side by side, one unsigned, one signing
 * with RSA-2048, one with Ed25519; the same messages are posted through POST /v1/emails/batch to
 * each in turn (interleaved, order rotated per run), timed from the first post to the last 250.
 * Only one pipeline works at a time; the idle ones use next to no CPU.
 *
 * Parts "shaping", "dns" and "isolation" (`delivery-shaping.ts`, `delivery-dns.ts`,
 * `delivery-isolation.ts`) share one rig (`delivery-rig.ts`): the fake internet, the broker and
 * three dispatcher processes with a routing file and a shaping file, fed EmailReadyForDispatch
 * records keyed by site. `POSTLINE_BENCH_DELIVERY_FULL=1` runs the issue's lengths (60 s of
 * shaping, 10,000 messages for DNS, 60 s of isolation); `POSTLINE_BENCH_DELIVERY_PARTS=a,b` runs
 * only those parts.
 */
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import pino from 'pino';
import { benchRow, type BenchContext, type BenchRow, type BenchSuite, type SuiteResult } from './bench-suite.js';
import { summarize } from './bench-stats.js';
import { Renderer } from '../../services/renderer/renderer.js';
import { EventPublisher } from '../../shared/events.js';
import { TemplateRepository } from '../../shared/templates/template-repository.js';
import type { BatchingProducer } from '../../shared/kafka/batching-producer.js';
import type { StageRecord } from '../../shared/kafka/stage-consumer.js';
import { EmailRequestedContract } from '../../shared/contracts/email-requested.js';
import { keyFor, type DkimKey, type KeyTable } from '../../shared/dkim/dkim-keys.js';
import type { DkimPolicy } from '../../services/renderer/message-signing.js';
import { emailRequest } from '../renderer/email-requests.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { waitFor } from '../helpers/broker.js';
import { FaultPipeline } from '../faults/fault-pipeline.js';
import { keygen } from '../../services/dkim-command.js';
import { startDeliveryRig, type DeliveryRig } from './delivery-rig.js';
import { SHAPING_SITES, shapingParams, shapingPart } from './delivery-shaping.js';
import { dnsParams, dnsPart } from './delivery-dns.js';
import { isolationParams, isolationPart } from './delivery-isolation.js';

/** The direct-delivery rig, started by the first part that needs it and closed after the suite. */
interface Rigs {
  delivery(): Promise<DeliveryRig>;
}

type Part = (ctx: BenchContext, rigs: Rigs) => Promise<SuiteResult>;

const FULL = process.env.POSTLINE_BENCH_DELIVERY_FULL === '1';

interface DkimParams {
  messages: number;
  /** Records in flight in one Renderer, as the stage consumer's concurrency allows. */
  concurrency: number;
}

const DKIM_DEFAULT: DkimParams = { messages: 4000, concurrency: 64 };
const DKIM_QUICK: DkimParams = { messages: 400, concurrency: 64 };

const PARAGRAPH = '<p>Hello {name}, here is what changed in your account this week. Your order has shipped and will arrive soon. Thank you for shopping with us.</p>\n';

function requests(n: number): StageRecord[] {
  return Array.from({ length: n }, (_, i) => {
    const req = emailRequest({
      from: { email: 'news@mail.shop.example', name: 'Shop' },
      to: [{ email: `user${i}@example.org` }],
      subject: `Your weekly summary #${i}`,
      html: PARAGRAPH.repeat(14).replaceAll('{name}', `user ${i}`),
      text: PARAGRAPH.repeat(7).replace(/<\/?p>/g, '').replaceAll('{name}', `user ${i}`),
      headers: { 'List-Unsubscribe': `<https://shop.example/u/${i}>`, 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' },
    });
    return {
      topic: 'email.requested',
      partition: 0,
      message: { key: Buffer.from(req.messageId), value: EmailRequestedContract.encode(req), offset: String(i), timestamp: '0', attributes: 0, size: 0 },
    } as unknown as StageRecord;
  });
}

function policyFor(type: 'rsa' | 'ed25519'): DkimPolicy {
  const { privateKey } = type === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ed25519');
  const key: DkimKey = { domain: 'shop.example', selector: 'bench', type, bits: type === 'rsa' ? 2048 : undefined, privateKey, file: '(generated)', digest: '' };
  const table: KeyTable = { domains: new Map([['shop.example', { domain: 'shop.example', keys: [key], active: key, activeBy: 'last-selector' }]]) };
  return { keys: { keyFor: (d) => keyFor(table, d) }, missingKey: 'refuse' };
}

/** Messages per second through Renderer.handle, `concurrency` at a time. */
interface RateSample {
  perSec: number;
  /** Messages per second of this process's CPU time: steadier than wall time on a shared machine. */
  perCpuSec: number;
  bytes: number;
}

async function renderRate(records: StageRecord[], concurrency: number, dkim: DkimPolicy | undefined): Promise<RateSample> {
  let bytes = 0;
  const producer = {
    send: async (topic: string, m: { value: Buffer }) => {
      if (topic.startsWith('email.dispatch.')) bytes += m.value.length;
      return { topic, partition: 0, offset: '0' };
    },
  };
  const renderer = new Renderer({
    templates: new TemplateRepository({}),
    producer,
    events: new EventPublisher(producer as unknown as BatchingProducer, 'renderer'),
    logger: pino({ level: 'silent' }),
    limits: { maxRecordBytes: 1 << 20, maxMessageBytes: 1 << 20 },
    dkim,
  });
  let failed = 0;
  renderer.on('failed', () => failed++);
  let next = 0;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < records.length) await renderer.handle(records[next++]);
    }),
  );
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  if (failed > 0) throw new Error(`${failed} records failed to render`);
  return { perSec: (records.length * 1000) / ms, perCpuSec: (records.length * 1e6) / (cpu.user + cpu.system), bytes: bytes / records.length };
}

const dkimPart: Part = async (ctx) => {
  const p = ctx.quick ? DKIM_QUICK : DKIM_DEFAULT;
  const records = requests(p.messages);
  const variants = { unsigned: undefined, 'RSA-2048': policyFor('rsa'), Ed25519: policyFor('ed25519') } as const;
  const results: Record<keyof typeof variants, RateSample[]> = { unsigned: [], 'RSA-2048': [], Ed25519: [] };
  // Warm-up: JIT, MailComposer, the first RSA signature.
  await renderRate(records.slice(0, 200), p.concurrency, variants['RSA-2048']);
  for (let run = 0; run < ctx.runs && !ctx.signal.aborted; run++) {
    // Interleaved, rotating the order: a slower phase of the machine hits every variant alike.
    const order = (Object.keys(variants) as Array<keyof typeof variants>).map((_, i, all) => all[(i + run) % all.length]);
    for (const name of order) results[name].push(await renderRate(records, p.concurrency, variants[name]));
    ctx.progress(`dkim run ${run + 1}: ${order.map((n) => `${n} ${Math.round(results[n][results[n].length - 1].perSec)}/s`).join(', ')}`);
  }
  const baseline = { name: 'the same messages unsigned', unit: 'msg/s', value: summarize(results.unsigned.map((r) => r.perSec)) };
  const group = 'DKIM: render + sign in one renderer (in process, no Kafka)';
  const rows: BenchRow[] = (['RSA-2048', 'Ed25519'] as const).map((name) =>
    benchRow({
      group,
      name: `${name}, relaxed/relaxed, ${p.concurrency} in flight`,
      unit: 'msg/s',
      better: 'higher',
      value: summarize(results[name].map((r) => r.perSec)),
      also: [
        { label: 'per CPU-s', unit: 'msg', value: summarize(results[name].map((r) => r.perCpuSec)) },
        { label: 'bytes/msg', unit: 'B', value: summarize(results[name].map((r) => r.bytes)) },
      ],
      baseline,
    }),
  );
  const cpuMedian = (name: keyof typeof variants): number => summarize(results[name].map((r) => r.perCpuSec)).median;
  const notes = (['RSA-2048', 'Ed25519'] as const).map(
    (name, i) =>
      `${name}: ${rows[i].ratio.toFixed(2)}× the unsigned rate in wall time, ${(cpuMedian(name) / cpuMedian('unsigned')).toFixed(2)}× per CPU-second (unsigned ${Math.round(cpuMedian('unsigned'))} msg per CPU-s)`,
  );
  return { rows, params: { dkim: p }, notes, details: { dkim: results } };
};

interface E2eParams {
  messages: number;
}

const E2E_DEFAULT: E2eParams = { messages: 5000 };
const E2E_QUICK: E2eParams = { messages: 500 };
const BATCH = 500;
const POSTERS = 2;

function e2eMessages(n: number, run: number): Array<Record<string, unknown>> {
  return Array.from({ length: n }, (_, i) => ({
    from: 'Shop <news@mail.shop.example>',
    to: [`r${run}u${i}@example.org`],
    subject: `Your weekly summary #${i}`,
    html: PARAGRAPH.repeat(14).replaceAll('{name}', `user ${i}`),
    text: PARAGRAPH.repeat(7).replace(/<\/?p>/g, '').replaceAll('{name}', `user ${i}`),
    headers: { 'List-Unsubscribe': `<https://shop.example/u/${i}>`, 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' },
  }));
}

interface E2eRig {
  pipeline: FaultPipeline;
  sink: SmtpSink;
}

async function startE2eRig(keysDir: string | undefined): Promise<E2eRig> {
  const sink = await startSmtpSink({ greetingDelay: false });
  try {
    const pipeline = await FaultPipeline.start({
      stages: ['ingest', 'renderer', 'dispatcher'],
      env: {
        POSTLINE_DISPATCHER_RELAY_HOST: sink.host,
        POSTLINE_DISPATCHER_RELAY_PORT: String(sink.port),
        ...(keysDir ? { POSTLINE_RENDERER_DKIM_KEYS_DIR: keysDir, POSTLINE_RENDERER_DKIM_MISSING_KEY: 'refuse' } : {}),
      },
    });
    return { pipeline, sink };
  } catch (err) {
    await sink.close();
    throw err;
  }
}

/** Posts the messages (POSTERS batch requests in flight); resolves with msg/s from the first post to the last 250. */
async function e2eRate(ctx: BenchContext, rig: E2eRig, messages: Array<Record<string, unknown>>): Promise<number> {
  rig.sink.messages.length = 0;
  const t0 = performance.now();
  let next = 0;
  let refused = 0;
  await Promise.all(
    Array.from({ length: POSTERS }, async () => {
      while (next < messages.length) {
        const chunk = messages.slice(next, next + BATCH);
        next += BATCH;
        refused += (await rig.pipeline.sendBatch(chunk)).filter((id) => id === undefined).length;
      }
    }),
  );
  if (refused > 0) throw new Error(`${refused} messages were not accepted`);
  await waitFor(() => rig.sink.messages.length >= messages.length || ctx.signal.aborted, 900_000, 'every message at the sink');
  const ms = performance.now() - t0;
  if (rig.pipeline.deadLetters().length > 0) throw new Error(`dead letters: ${rig.pipeline.deadLetters()[0].code}`);
  return (messages.length * 1000) / ms;
}

const dkimE2ePart: Part = async (ctx) => {
  const p = ctx.quick ? E2E_QUICK : E2E_DEFAULT;
  const dirs = { rsa: `${ctx.tmpDir}/keys-rsa`, ed25519: `${ctx.tmpDir}/keys-ed25519` };
  await keygen({ dir: dirs.rsa, domain: 'shop.example', selector: 'bench', type: 'rsa', bits: 2048, force: false });
  await keygen({ dir: dirs.ed25519, domain: 'shop.example', selector: 'bench', type: 'ed25519', bits: 0, force: false });
  const names = ['unsigned', 'RSA-2048', 'Ed25519'] as const;
  const rigs = new Map<(typeof names)[number], E2eRig>();
  try {
    ctx.progress('dkim-e2e: starting three pipelines');
    // One after the other: three start-ups at once overload a 2-core machine past the readiness timeout.
    for (const [n, dir] of [['unsigned', undefined], ['RSA-2048', dirs.rsa], ['Ed25519', dirs.ed25519]] as const) rigs.set(n, await startE2eRig(dir));
    const results: Record<(typeof names)[number], number[]> = { unsigned: [], 'RSA-2048': [], Ed25519: [] };
    // Warm-up: each pipeline's connections, fleets and JIT.
    for (const n of names) await e2eRate(ctx, rigs.get(n)!, e2eMessages(200, -1));
    for (const n of names) {
      const signed = /^DKIM-Signature:/i.test(rigs.get(n)!.sink.messages[0].raw.toString());
      if (signed !== (n !== 'unsigned')) throw new Error(`${n}: the sink got ${signed ? 'signed' : 'unsigned'} mail`);
    }
    for (let run = 0; run < ctx.runs && !ctx.signal.aborted; run++) {
      const order = names.map((_, i) => names[(i + run) % names.length]);
      for (const n of order) results[n].push(await e2eRate(ctx, rigs.get(n)!, e2eMessages(p.messages, run)));
      ctx.progress(`dkim-e2e run ${run + 1}: ${order.map((n) => `${n} ${Math.round(results[n][results[n].length - 1])}/s`).join(', ')}`);
    }
    const baseline = { name: 'the same messages unsigned', unit: 'msg/s', value: summarize(results.unsigned) };
    const rows = (['RSA-2048', 'Ed25519'] as const).map((n) =>
      benchRow({
        group: `DKIM end to end: POST /v1/emails/batch → 250 at the relay, ${p.messages} messages`,
        name: `${n}-signed`,
        unit: 'msg/s',
        better: 'higher',
        value: summarize(results[n]),
        baseline,
      }),
    );
    const notes = rows.map((r) => `${r.name}: ${r.ratio.toFixed(2)}× unsigned end to end (issue target for RSA-2048: ≥ 0.85×)${r.ratio >= 0.85 ? '' : ' — below target'}`);
    return { rows, params: { dkimE2e: { ...p, batch: BATCH, posters: POSTERS } }, notes, details: { dkimE2e: results } };
  } finally {
    await Promise.all([...rigs.values()].map(async (r) => {
      await r.pipeline.close();
      await r.sink.close();
    }));
  }
};

/** Parts in the order they run; add new ones here. */
const PARTS: Array<[string, Part]> = [
  ['dkim', dkimPart],
  ['dkim-e2e', dkimE2ePart],
  ['shaping', async (ctx, rigs) => shapingPart(ctx, await rigs.delivery(), shapingParams(ctx.quick, FULL))],
  ['dns', async (ctx, rigs) => dnsPart(ctx, await rigs.delivery(), dnsParams(ctx.quick, FULL))],
  ['isolation', async (ctx, rigs) => isolationPart(ctx, await rigs.delivery(), isolationParams(ctx.quick, FULL))],
];

/** Parts chosen by POSTLINE_BENCH_DELIVERY_PARTS (comma-separated names), else all. */
function chosenParts(): Array<[string, Part]> {
  const names = (process.env.POSTLINE_BENCH_DELIVERY_PARTS ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = names.filter((n) => !PARTS.some(([p]) => p === n));
  if (unknown.length) throw new Error(`POSTLINE_BENCH_DELIVERY_PARTS: unknown part(s) ${unknown.join(', ')}; parts: ${PARTS.map(([p]) => p).join(', ')}`);
  return names.length ? PARTS.filter(([p]) => names.includes(p)) : PARTS;
}

export const suite: BenchSuite = {
  name: 'delivery',
  description: 'Direct delivery: DKIM signing cost (in the renderer and end to end); shaping accuracy, DNS queries and isolation of a throttled site (three dispatchers on the fake internet)',
  timeLimitMs: { full: (FULL ? 60 : 30) * 60_000, quick: 8 * 60_000 },
  async run(ctx) {
    const out: SuiteResult = { rows: [], params: {}, notes: [], details: {}, failures: [] };
    let rig: Promise<DeliveryRig> | undefined;
    const rigs: Rigs = {
      delivery: () =>
        (rig ??= (async () => {
          ctx.progress('delivery rig: fake internet, broker, 3 dispatchers');
          const dir = `${ctx.tmpDir}/delivery-rig`;
          fs.mkdirSync(dir, { recursive: true });
          return startDeliveryRig({ dispatchers: 3, partitions: 6, shapingSites: SHAPING_SITES, dir, progress: ctx.progress });
        })()),
    };
    try {
      for (const [name, part] of chosenParts()) {
        try {
          const r = await part(ctx, rigs);
          out.rows.push(...r.rows);
          Object.assign(out.params, r.params);
          out.notes.push(...r.notes);
          Object.assign(out.details!, r.details ?? {});
        } catch (err) {
          out.failures!.push(`${name}: ${(err as Error).message}`);
        }
      }
    } finally {
      if (rig) await (await rig.catch(() => undefined))?.close();
    }
    return out;
  },
};
