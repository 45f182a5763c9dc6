/**
 * Part "shaping" of `delivery.bench.ts`: the issue's shaping accuracy. Three dispatcher processes;
 * one site (`limited.test`, 20 recipient domains on one MX host that takes ~60 ms of replies per
 * message) limited to 50 msg/s and 5 connections by the shaping file; a backlog of critical
 * messages to it, keyed by site so one dispatcher owns it. Measured at the MX host: messages per
 * second from the 11th message to the last one (the first ten are the bucket's saved burst and
 * the connection set-up), and the most connections open at once over the whole part. Baseline in
 * the same run, interleaved: the same backlog to `unlimited.test` (its rule: no rate limit, the
 * fleet's 20 connections) — what the site gets unshaped. A second row sends transactional mail to
 * a site with the same limits (the fleet's critical reserve leaves it one connection fewer); it has
 * an MX host of its own so that the connection counts of the critical runs stay their own (each
 * priority is its own consumer group, but partition-assigner.ts gives partition p of every
 * priority's topic to the same dispatcher, so one site's priorities share its limits). When the
 * dispatchers run no real shaper (NoShaping in main.ts: no `postline_shaping_*` metrics), the
 * part says so and its targets are not met.
 */
import { benchRow, type BenchContext, type BenchRow, type SuiteResult } from './bench-suite.js';
import { summarize } from './bench-stats.js';
import { waitFor } from '../helpers/broker.js';
import type { FakeSmtpServer } from '../helpers/fake-internet/index.js';
import type { Priority } from '../../shared/config.js';
import { dispatchRecord, POOL_NO_STS, type DeliveryRig } from './delivery-rig.js';

export const LIMITED_SITE = 'limited.test';
export const FREE_SITE = 'unlimited.test';
/** Same rule as LIMITED_SITE, for the transactional look (its own MX host, so the connection count of the critical runs stays their own). */
export const LIMITED_TX_SITE = 'limited-tx.test';
const RATE = 50;
const CONNECTIONS = 5;
/** Shaping-file rules of this part's two sites. */
export const SHAPING_SITES = {
  [LIMITED_SITE]: { maxConnections: CONNECTIONS, perSecond: RATE },
  [LIMITED_TX_SITE]: { maxConnections: CONNECTIONS, perSecond: RATE },
  [FREE_SITE]: { maxConnections: 20, perSecond: null },
};
const DOMAINS = 20;
/**
 * The MX hosts wait this long before each reply to MAIL FROM, RCPT TO and the end of DATA (real
 * providers take longer): one connection then carries ~14 msg/s, so 50/s needs several
 * connections and the limit of 5 is exercised, while the 5 allowed can still carry 50/s.
 */
const REPLY_DELAY_MS = 20;
/**
 * Messages of the second look at the limited site, at transactional priority: a fleet keeps
 * `dispatcher.fleet.reserveCritical` (4) of its connections for critical mail, at most a third of
 * its cap (fleet-admission.ts `reserveAt`), so of a site's 5 transactional mail may use 4 — this
 * shows what that does to the site's rate.
 */
const TX_MESSAGES = 150;
/**
 * Messages skipped at the start of each run before the rate is taken: more than the bucket saves
 * up (`dispatcher.shaping.burstMs`, 100 ms = 5 messages at 50/s), and the first connections.
 */
const SKIP = 10;

export interface ShapingParams {
  /** Seconds of traffic at the limit per run (the backlog is RATE × (seconds + 1)). */
  seconds: number;
}

export function shapingParams(quick: boolean, full: boolean): ShapingParams {
  return { seconds: full ? 60 : quick ? 5 : 10 };
}

interface SiteRun {
  perSec: number;
  messages: number;
  seconds: number;
}

function domainsOf(site: string): string[] {
  return Array.from({ length: DOMAINS }, (_, i) => `d${i}.${site}`);
}

async function startSite(rig: DeliveryRig, host: string, site: string): Promise<FakeSmtpServer> {
  return rig.net.smtp({ host, name: `mx.${site}`, mxFor: domainsOf(site), verifyDkim: false, script: { replyDelayMs: REPLY_DELAY_MS } });
}

/** Sends `n` messages to the site at once and measures the rate at its MX host. */
async function runSite(ctx: BenchContext, rig: DeliveryRig, server: FakeSmtpServer, site: string, n: number, tag: string, priority: Priority = 'critical'): Promise<SiteRun> {
  const domains = domainsOf(site);
  const before = server.messages.length;
  await rig.produce(Array.from({ length: n }, (_, i) => dispatchRecord(`${tag}-${i}@${domains[i % domains.length]}`, POOL_NO_STS, priority)));
  await waitFor(() => server.messages.length >= before + n || ctx.signal.aborted, Math.max(120_000, (n / RATE) * 3_000), `${n} messages at mx.${site}`);
  const at = server.messages.slice(before).map((m) => m.at).sort((a, b) => a - b);
  // Intervals between arrivals from the SKIP-th on: n − 1 − SKIP of them.
  const ms = Math.max(1, at[at.length - 1] - at[SKIP]);
  return { perSec: ((at.length - 1 - SKIP) * 1000) / ms, messages: at.length, seconds: (at[at.length - 1] - at[0]) / 1000 };
}

export async function shapingPart(ctx: BenchContext, rig: DeliveryRig, p: ShapingParams): Promise<SuiteResult> {
  const n = RATE * (p.seconds + 1);
  const limited = await startSite(rig, '127.0.0.20', LIMITED_SITE);
  const free = await startSite(rig, '127.0.0.21', FREE_SITE);
  const limitedTx = await startSite(rig, '127.0.0.25', LIMITED_TX_SITE);
  const wired = await rig.shaperWired();
  if (!wired) ctx.progress('shaping: the dispatchers run no real shaper (NoShaping): the limited site goes unshaped');
  // Warm-up: DNS answers cached, JIT; connections are measured from here on anyway.
  await runSite(ctx, rig, limited, LIMITED_SITE, 20, 'warm');
  await runSite(ctx, rig, free, FREE_SITE, 20, 'warm');
  await runSite(ctx, rig, limitedTx, LIMITED_TX_SITE, 20, 'warm', 'transactional');
  const runs: { limited: SiteRun[]; free: SiteRun[]; transactional: SiteRun[] } = { limited: [], free: [], transactional: [] };
  const measure = {
    free: (run: number) => runSite(ctx, rig, free, FREE_SITE, n, `r${run}`),
    limited: (run: number) => runSite(ctx, rig, limited, LIMITED_SITE, n, `r${run}`),
    transactional: (run: number) => runSite(ctx, rig, limitedTx, LIMITED_TX_SITE, TX_MESSAGES, `t${run}`, 'transactional'),
  };
  for (let run = 0; run < ctx.runs && !ctx.signal.aborted; run++) {
    const names = ['free', 'limited', 'transactional'] as const;
    for (let i = 0; i < names.length; i++) {
      const which = names[(i + run) % names.length];
      runs[which].push(await measure[which](run));
    }
    ctx.progress(`shaping run ${run + 1}: limited ${runs.limited.at(-1)!.perSec.toFixed(1)}/s (transactional ${runs.transactional.at(-1)!.perSec.toFixed(1)}/s), unshaped ${runs.free.at(-1)!.perSec.toFixed(1)}/s; connections at once ${limited.maxConcurrentConnections()} / ${free.maxConcurrentConnections()}`);
  }
  const group = `Shaping: 3 dispatchers, one site limited to ${RATE}/s and ${CONNECTIONS} connections, ${n} critical messages per run (rate after the first 10)`;
  const baseline = { name: 'the same backlog to a site with the limit off', unit: 'msg/s', value: summarize(runs.free.map((r) => r.perSec)) };
  const notWired = wired ? [] : ['no real shaper in the dispatchers (NoShaping): measured unshaped'];
  const rate = summarize(runs.limited.map((r) => r.perSec));
  const maxConn = limited.maxConcurrentConnections();
  const rows: BenchRow[] = [
    benchRow({ group, name: `rate at the MX host (target ${RATE} ± 5 %)`, unit: 'msg/s', better: 'lower', value: rate, baseline, target: { op: '<', value: RATE * 1.05 }, warnings: notWired }),
    benchRow({ group, name: `a site with the same limits, transactional priority (${TX_MESSAGES} messages)`, unit: 'msg/s', better: 'higher', value: summarize(runs.transactional.map((r) => r.perSec)), baseline, warnings: notWired }),
    benchRow({
      group,
      name: `most connections open at once (target ≤ ${CONNECTIONS})`,
      unit: 'conn',
      better: 'lower',
      value: summarize([maxConn]),
      baseline: { name: 'the site with the limit off', unit: 'conn', value: summarize([free.maxConcurrentConnections()]) },
      target: { op: '<', value: CONNECTIONS + 1 },
      warnings: notWired,
    }),
  ];
  const within = Math.abs(rate.median - RATE) <= RATE * 0.05;
  const notes = [
    wired
      ? `shaping: ${rate.median.toFixed(1)} msg/s (${((rate.median / RATE - 1) * 100).toFixed(1)} % from ${RATE}/s: ${within ? 'within' : 'OUTSIDE'} ±5 %), at most ${maxConn} connections at once (${maxConn <= CONNECTIONS ? 'within' : 'ABOVE'} ${CONNECTIONS}); unshaped ${baseline.value.median.toFixed(1)} msg/s`
      : `shaping: NOT MEASURED — the dispatchers run no real shaper (services/dispatcher/main.ts wires NoShaping; no postline_shaping_* metrics), so the "limited" site got ${rate.median.toFixed(1)} msg/s and up to ${maxConn} connections, unshaped (the limit-off site: ${baseline.value.median.toFixed(1)} msg/s). Targets not met.`,
    `shaping: the load is critical mail (a fleet's every connection is open to it); transactional mail to a site with the same limits got ${summarize(runs.transactional.map((r) => r.perSec)).median.toFixed(1)} msg/s at most ${limitedTx.maxConcurrentConnections()} connections at once${wired ? ` — the fleet reserves (dispatcher.fleet.reserveCritical 4, reserveTransactional 2; each at most a third of a fleet's cap) leave it ${CONNECTIONS - 1} of the site's ${CONNECTIONS} connections, and each message takes ~${3 * REPLY_DELAY_MS} ms of server replies here` : ''}`,
    `shaping: site ${LIMITED_SITE} is keyed to dispatch partition ${rig.partitionOf(LIMITED_SITE)} of ${rig.partitions} (one of the three dispatchers owns it)`,
  ];
  return { rows, params: { shaping: { ...p, messagesPerRun: n, rate: RATE, connections: CONNECTIONS, replyDelayMs: REPLY_DELAY_MS, dispatchers: rig.dispatchers.length, shaperWired: wired } }, notes, details: { shaping: runs } };
}
