/**
 * Part "isolation" of `delivery.bench.ts`: a site throttled hard must not hold up other sites'
 * mail. `throttled.test`'s MX host answers `421 4.7.28` to MAIL FROM once 5 messages from the
 * source address were accepted in the last minute (so to nearly every attempt). Four other sites
 * get a steady open-loop load (each message's latency counted from its scheduled produce time to
 * its arrival at the MX host, so a stalled dispatcher cannot hide it); two of them are chosen so
 * that their site key lands on the throttled site's dispatch partition. Measured: their p99 with
 * a flood to the throttled site running beside them, against the same load with no throttled
 * traffic (idle baseline), interleaved in the same run. Target: within 2×. The flood comes
 * through a producer of its own, as another service's traffic would.
 */
import { benchRow, type BenchContext, type BenchRow, type SuiteResult } from './bench-suite.js';
import { latencyPercentiles, summarize } from './bench-stats.js';
import { waitFor } from '../helpers/broker.js';
import type { FakeSmtpServer } from '../helpers/fake-internet/index.js';
import type { EmailReadyForDispatch } from '../../shared/contracts/email-ready-for-dispatch.js';
import { dispatchRecord, POOL_NO_STS, type DeliveryRig } from './delivery-rig.js';

const THROTTLED_SITE = 'throttled.test';
const THROTTLED_DOMAINS = 10;
const OTHERS_PER_PARTITION = 2;
const DOMAINS_PER_SITE = 3;
const TICK_MS = 50;

export interface IsolationParams {
  seconds: number;
  /** Messages per second to the other sites together. */
  otherRate: number;
  /** Messages per second to the throttled site while it is loaded. */
  floodRate: number;
}

export function isolationParams(quick: boolean, full: boolean): IsolationParams {
  return { seconds: full ? 60 : quick ? 6 : 12, otherRate: 20, floodRate: 100 };
}

/** Two site names on the throttled site's partition and two elsewhere. */
function chooseSites(rig: DeliveryRig): { shared: string[]; apart: string[] } {
  const home = rig.partitionOf(THROTTLED_SITE);
  const shared: string[] = [];
  const apart: string[] = [];
  for (let i = 0; shared.length < OTHERS_PER_PARTITION || apart.length < OTHERS_PER_PARTITION; i++) {
    const site = `site${i}.test`;
    const list = rig.partitionOf(site) === home ? shared : apart;
    if (list.length < OTHERS_PER_PARTITION) list.push(site);
  }
  return { shared, apart };
}

/**
 * Produces `make(i)` at `rate`/s for `seconds` on a fixed schedule (a batch every TICK_MS);
 * returns each message's scheduled time by recipient.
 */
async function paced(ctx: BenchContext, rig: DeliveryRig, lane: 'main' | 'second', rate: number, seconds: number, make: (i: number) => EmailReadyForDispatch): Promise<Map<string, number>> {
  const scheduled = new Map<string, number>();
  const total = Math.round(rate * seconds);
  const t0 = Date.now();
  let i = 0;
  while (i < total && !ctx.signal.aborted) {
    const now = Date.now();
    const batch: EmailReadyForDispatch[] = [];
    for (; i < total && t0 + (i * 1000) / rate <= now; i++) {
      const r = make(i);
      scheduled.set(r.envelope.to[0], t0 + (i * 1000) / rate);
      batch.push(r);
    }
    if (batch.length) await rig.produce(batch, lane);
    await new Promise((r) => setTimeout(r, TICK_MS));
  }
  return scheduled;
}

interface IsolationRun {
  p50: number;
  p99: number;
  max: number;
  messages: number;
  /** p99 of the sites on the throttled site's partition, and of the others. */
  p99Shared: number;
  p99Apart: number;
  /** Throttled-site outcomes of the run's flood. */
  flood?: { produced: number; sent: number; deferred: number; other: number; refusals: number };
}

async function runOnce(ctx: BenchContext, rig: DeliveryRig, servers: { others: FakeSmtpServer; throttled: FakeSmtpServer }, split: { shared: string[]; apart: string[] }, p: IsolationParams, loaded: boolean, tag: string): Promise<IsolationRun> {
  const sites = [...split.shared, ...split.apart];
  const domains = sites.flatMap((s) => Array.from({ length: DOMAINS_PER_SITE }, (_, j) => `d${j}.${s}`));
  const refusalsBefore = servers.throttled.refusals.length;
  const floodIds: string[] = [];
  const flood = loaded
    ? paced(ctx, rig, 'second', p.floodRate, p.seconds + 2, (i) => {
        const r = dispatchRecord(`${tag}-${i}@t${i % THROTTLED_DOMAINS}.${THROTTLED_SITE}`, POOL_NO_STS);
        floodIds.push(r.messageId);
        return r;
      })
    : Promise.resolve(new Map<string, number>());
  const before = servers.others.messages.length;
  const scheduled = await paced(ctx, rig, 'main', p.otherRate, p.seconds, (i) => dispatchRecord(`${tag}-${i}@${domains[i % domains.length]}`, POOL_NO_STS));
  await flood;
  await waitFor(() => servers.others.messages.length >= before + scheduled.size || ctx.signal.aborted, 120_000, `${scheduled.size} messages at the other sites`);
  const arrived = servers.others.messages.slice(before).flatMap((m) => {
    const at = scheduled.get(m.to[0]);
    return at === undefined ? [] : [{ ms: m.at - at, shared: split.shared.some((s) => m.to[0].endsWith(`.${s}`)) }];
  });
  const l = latencyPercentiles(arrived.map((a) => a.ms));
  const p99Of = (shared: boolean): number => latencyPercentiles(arrived.filter((a) => a.shared === shared).map((a) => a.ms)).p99;
  const run: IsolationRun = { p50: l.p50, p99: l.p99, max: l.max, messages: arrived.length, p99Shared: p99Of(true), p99Apart: p99Of(false) };
  if (loaded) {
    // The flood's every message has its outcome before the next run starts (its idle baseline is idle).
    const outcomes = await waitFor(() => {
      const o = rig.outcomes();
      return floodIds.every((id) => o.has(id)) || ctx.signal.aborted ? o : undefined;
    }, 300_000, 'an outcome for every flood message');
    const types = floodIds.map((id) => outcomes.get(id));
    run.flood = {
      produced: floodIds.length,
      sent: types.filter((t) => t === 'sent').length,
      deferred: types.filter((t) => t === 'deferred').length,
      other: types.filter((t) => t !== 'sent' && t !== 'deferred').length,
      refusals: servers.throttled.refusals.length - refusalsBefore,
    };
  }
  return run;
}

export async function isolationPart(ctx: BenchContext, rig: DeliveryRig, p: IsolationParams): Promise<SuiteResult> {
  const split = chooseSites(rig);
  const { shared, apart } = split;
  const sites = [...shared, ...apart];
  const throttled = await rig.net.smtp({
    host: '127.0.0.23',
    name: `mx.${THROTTLED_SITE}`,
    mxFor: Array.from({ length: THROTTLED_DOMAINS }, (_, i) => `t${i}.${THROTTLED_SITE}`),
    verifyDkim: false,
    script: { throttleAfterPerMinute: 5 },
  });
  const others = await rig.net.smtp({ host: '127.0.0.24', name: 'mx.others.test', verifyDkim: false });
  for (const s of sites) {
    rig.net.dns.a(`mx.${s}`, '127.0.0.24');
    for (let j = 0; j < DOMAINS_PER_SITE; j++) rig.net.dns.mx(`d${j}.${s}`, [{ exchange: `mx.${s}`, priority: 10 }]);
  }
  const servers = { others, throttled };
  // Warm-up: DNS answers, connections to every site, JIT.
  await runOnce(ctx, rig, servers, split, { ...p, seconds: 2 }, false, 'warm');
  const runs: { idle: IsolationRun[]; loaded: IsolationRun[] } = { idle: [], loaded: [] };
  for (let run = 0; run < ctx.runs && !ctx.signal.aborted; run++) {
    const order = run % 2 === 0 ? (['idle', 'loaded'] as const) : (['loaded', 'idle'] as const);
    for (const v of order) runs[v].push(await runOnce(ctx, rig, servers, split, p, v === 'loaded', `${v}${run}`));
    const f = runs.loaded.at(-1)!.flood!;
    const [l, i] = [runs.loaded.at(-1)!, runs.idle.at(-1)!];
    ctx.progress(`isolation run ${run + 1}: other sites p99 ${l.p99.toFixed(0)} ms with the throttled site (same partition ${l.p99Shared.toFixed(0)}, others ${l.p99Apart.toFixed(0)}), ${i.p99.toFixed(0)} ms idle (${i.p99Shared.toFixed(0)}, ${i.p99Apart.toFixed(0)}); flood ${f.produced}: ${f.sent} sent, ${f.deferred} deferred, ${f.refusals} refusals at its MX`);
  }
  const idle = summarize(runs.idle.map((r) => r.p99));
  const loaded = summarize(runs.loaded.map((r) => r.p99));
  const group = `Isolation: ${sites.length} sites at ${p.otherRate}/s for ${p.seconds} s, produce → 250; beside them ${p.floodRate}/s to a site answering 421 4.7.28`;
  const rows: BenchRow[] = [
    benchRow({
      group,
      name: 'other sites p99 with one site throttled hard (target ≤ 2× idle)',
      unit: 'ms',
      better: 'lower',
      value: loaded,
      also: [
        { label: 'p50', unit: 'ms', value: summarize(runs.loaded.map((r) => r.p50)) },
        { label: 'max', unit: 'ms', value: summarize(runs.loaded.map((r) => r.max)) },
      ],
      baseline: { name: 'the same sites, no throttled traffic', unit: 'ms', value: idle },
      target: { op: '<', value: 2 * idle.median },
    }),
  ];
  const ratio = loaded.median / idle.median;
  const med = (v: 'idle' | 'loaded', k: 'p99Shared' | 'p99Apart'): string => summarize(runs[v].map((r) => r[k])).median.toFixed(0);
  const floods = runs.loaded.map((r) => r.flood!);
  const wired = await rig.shaperWired();
  const notes = [
    ...(wired ? [] : ['isolation: the dispatchers run no real shaper (NoShaping): no adaptive back-off, every flood message is an SMTP attempt']),
    `isolation: the throttled site's flood per run (median): ${summarize(floods.map((f) => f.produced)).median} produced, ${summarize(floods.map((f) => f.sent)).median} sent, ${summarize(floods.map((f) => f.deferred)).median} deferred, ${summarize(floods.map((f) => f.other)).median} other outcomes; ${summarize(floods.map((f) => f.refusals)).median} 421s at its MX host (SMTP attempts that reached it)`,
    `isolation: p99 of the sites sharing the throttled site's partition ${med('loaded', 'p99Shared')} ms loaded / ${med('idle', 'p99Shared')} ms idle; of the sites on other partitions ${med('loaded', 'p99Apart')} / ${med('idle', 'p99Apart')} ms`,
    `isolation: other sites' p99 ${loaded.median.toFixed(0)} ms beside the throttled site vs ${idle.median.toFixed(0)} ms idle (${ratio.toFixed(2)}×, target ≤ 2×${ratio <= 2 ? '' : ' — MISSED'}); ${shared.join(', ')} share the throttled site's dispatch partition ${rig.partitionOf(THROTTLED_SITE)}, ${apart.join(', ')} do not`,
  ];
  return { rows, params: { isolation: { ...p, sites, sharedPartition: shared, throttleAfterPerMinute: 5, shaperWired: wired } }, notes, details: { isolation: runs } };
}
