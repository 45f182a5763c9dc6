/**
 * Part "dns" of `delivery.bench.ts`: what direct delivery costs in DNS queries. Messages to 100
 * recipient domains (10 per site, each site one MX host name on one fake MX server), through the
 * three dispatchers, counted at the fake DNS server by type — once through a route that honours
 * MTA-STS (a `_mta-sts` TXT lookup per domain) and once through one that does not, interleaved,
 * each run on fresh names so every run starts with cold caches. The bench's own site-keying
 * lookups (what the renderer will do) happen first and are reported apart. Target: MX queries ≤
 * the number of domains (one per domain per TTL, not one per message).
 */
import { benchRow, type BenchContext, type BenchRow, type SuiteResult } from './bench-suite.js';
import { summarize } from './bench-stats.js';
import { waitFor } from '../helpers/broker.js';
import type { FakeSmtpServer } from '../helpers/fake-internet/index.js';
import { dispatchRecord, POOL_NO_STS, POOL_STS, type DeliveryRig } from './delivery-rig.js';

const DOMAINS = 100;
const SITES = 10;
const MX_ADDRESS = '127.0.0.22';

export interface DnsParams {
  messages: number;
}

export function dnsParams(quick: boolean, full: boolean): DnsParams {
  return { messages: full ? 10_000 : quick ? 1_000 : 2_000 };
}

interface DnsRun {
  byType: Record<string, number>;
  total: number;
  /** Queries of the bench's site keying before the messages were produced. */
  keying: number;
  seconds: number;
}

type Variant = 'sts' | 'plain';

async function runVariant(ctx: BenchContext, rig: DeliveryRig, server: FakeSmtpServer, n: number, variant: Variant, tag: string): Promise<DnsRun> {
  const { dns } = rig.net;
  const domains = Array.from({ length: DOMAINS }, (_, i) => `d${i}-${tag}.test`);
  for (let k = 0; k < SITES; k++) dns.a(`mx.h${k}-${tag}.test`, MX_ADDRESS);
  domains.forEach((d, i) => dns.mx(d, [{ exchange: `mx.h${i % SITES}-${tag}.test`, priority: 10 }]));
  const keyingFrom = dns.queries.length;
  for (const d of domains) await rig.keys.siteOf(d);
  const mark = dns.queries.length;
  const before = server.messages.length;
  const t0 = Date.now();
  await rig.produce(Array.from({ length: n }, (_, i) => dispatchRecord(`u${i}@${domains[i % DOMAINS]}`, variant === 'sts' ? POOL_STS : POOL_NO_STS)));
  await waitFor(() => server.messages.length >= before + n || ctx.signal.aborted, 600_000, `${n} messages at the DNS bench's MX server`);
  const queries = dns.queries.slice(mark);
  const byType: Record<string, number> = {};
  for (const q of queries) byType[q.type] = (byType[q.type] ?? 0) + 1;
  return { byType, total: queries.length, keying: mark - keyingFrom, seconds: (Date.now() - t0) / 1000 };
}

export async function dnsPart(ctx: BenchContext, rig: DeliveryRig, p: DnsParams): Promise<SuiteResult> {
  const server = await rig.net.smtp({ host: MX_ADDRESS, name: 'mx.dns-bench.test', verifyDkim: false });
  const runs: Record<Variant, DnsRun[]> = { sts: [], plain: [] };
  for (let run = 0; run < ctx.runs && !ctx.signal.aborted; run++) {
    const order: Variant[] = run % 2 === 0 ? ['plain', 'sts'] : ['sts', 'plain'];
    for (const v of order) runs[v].push(await runVariant(ctx, rig, server, p.messages, v, `${v}${run}`));
    const fmt = (r: DnsRun): string => `${r.total} (${Object.entries(r.byType).map(([t, c]) => `${t} ${c}`).join(', ')})`;
    ctx.progress(`dns run ${run + 1}: MTA-STS on ${fmt(runs.sts.at(-1)!)}, off ${fmt(runs.plain.at(-1)!)} queries`);
  }
  const mx = (v: Variant) => summarize(runs[v].map((r) => r.byType.MX ?? 0));
  const total = (v: Variant) => summarize(runs[v].map((r) => r.total));
  const group = `DNS: ${p.messages} messages to ${DOMAINS} domains (${SITES} sites) through 3 dispatchers, queries at the DNS server`;
  const rows: BenchRow[] = [
    benchRow({ group, name: `MX queries, MTA-STS off (target ≤ ${DOMAINS})`, unit: 'queries', better: 'lower', value: mx('plain'), baseline: { name: 'one lookup per message (no cache)', unit: 'queries', value: summarize([p.messages]) }, target: { op: '<', value: DOMAINS + 1 } }),
    benchRow({ group, name: `MX queries, MTA-STS on (target ≤ ${DOMAINS})`, unit: 'queries', better: 'lower', value: mx('sts'), baseline: { name: 'MX queries with MTA-STS off', unit: 'queries', value: mx('plain') }, target: { op: '<', value: DOMAINS + 1 } }),
    benchRow({ group, name: 'all queries, MTA-STS on', unit: 'queries', better: 'lower', value: total('sts'), baseline: { name: 'all queries with MTA-STS off', unit: 'queries', value: total('plain') } }),
  ];
  const types = (v: Variant): string => {
    const all = new Set(runs[v].flatMap((r) => Object.keys(r.byType)));
    return [...all].sort().map((t) => `${t} ${summarize(runs[v].map((r) => r.byType[t] ?? 0)).median}`).join(', ');
  };
  const notes = [
    `dns: MTA-STS off — ${total('plain').median} queries (${types('plain')}); MTA-STS on — ${total('sts').median} queries (${types('sts')}); medians per run`,
    `dns: the bench's own site keying (SiteKeys, as the renderer will key records) cost ${summarize(runs.plain.map((r) => r.keying)).median} queries per run before producing, not counted above`,
  ];
  return { rows, params: { dns: { ...p, domains: DOMAINS, sites: SITES } }, notes, details: { dns: runs } };
}
