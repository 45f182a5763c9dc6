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
 */
import { generateKeyPairSync } from 'node:crypto';
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

type Part = (ctx: BenchContext) => Promise<SuiteResult>;

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
async function renderRate(records: StageRecord[], concurrency: number, dkim: DkimPolicy | undefined): Promise<{ perSec: number; bytes: number }> {
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
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < records.length) await renderer.handle(records[next++]);
    }),
  );
  const ms = performance.now() - t0;
  if (failed > 0) throw new Error(`${failed} records failed to render`);
  return { perSec: (records.length * 1000) / ms, bytes: bytes / records.length };
}

const dkimPart: Part = async (ctx) => {
  const p = ctx.quick ? DKIM_QUICK : DKIM_DEFAULT;
  const records = requests(p.messages);
  const variants = { unsigned: undefined, 'RSA-2048': policyFor('rsa'), Ed25519: policyFor('ed25519') } as const;
  const results: Record<keyof typeof variants, Array<{ perSec: number; bytes: number }>> = { unsigned: [], 'RSA-2048': [], Ed25519: [] };
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
      also: [{ label: 'bytes/msg', unit: 'B', value: summarize(results[name].map((r) => r.bytes)) }],
      baseline,
    }),
  );
  const notes = rows.map((r) => `${r.name.split(',')[0]}: ${r.ratio.toFixed(2)}× the unsigned rate (the issue asks ≥ 0.85× end to end, where Kafka and SMTP add the same cost to both)`);
  return { rows, params: { dkim: p }, notes, details: { dkim: results } };
};

/** Parts in the order they run; add new ones here. */
const PARTS: Array<[string, Part]> = [['dkim', dkimPart]];

export const suite: BenchSuite = {
  name: 'delivery',
  description: 'Direct delivery: DKIM signing cost (render + sign vs unsigned, RSA-2048 and Ed25519)',
  timeLimitMs: { full: 10 * 60_000, quick: 2 * 60_000 },
  async run(ctx) {
    const out: SuiteResult = { rows: [], params: {}, notes: [], details: {}, failures: [] };
    for (const [name, part] of PARTS) {
      try {
        const r = await part(ctx);
        out.rows.push(...r.rows);
        Object.assign(out.params, r.params);
        out.notes.push(...r.notes);
        Object.assign(out.details!, r.details ?? {});
      } catch (err) {
        out.failures!.push(`${name}: ${(err as Error).message}`);
      }
    }
    return out;
  },
};
