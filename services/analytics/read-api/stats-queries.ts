/**
 * `GET /v1/stats`: counts by event type, delivery / bounce / deferral rates and accepted → sent
 * latency percentiles per time bucket (and per domain, priority, pool, tag, site, source address,
 * bounce category, bounce class, feedback channel or sending domain, or — opens and clicks only —
 * engagement: human or the machine rule, and first or repeat), read from the per-minute rollups. Tenant-scoped; values are query
 * parameters, and the only identifier that varies (the group column) comes from a fixed table.
 */
import { EVENT_TYPES } from '../../../shared/contracts/email-event.js';
import { LATENCY_LEVELS } from '../schema/migrations.js';
import type { QueryContext } from './message-queries.js';
import type { GroupBy, StatsParams } from './params.js';

export interface Rates {
  /** sent / (sent + bounced + expired): of the deliveries that ended, the share delivered. */
  delivery: number | null;
  /** bounced / (sent + bounced + expired). */
  bounce: number | null;
  /** deferred / (sent + deferred + bounced): of the SMTP attempts, the share answered "try later". */
  deferral: number | null;
}

export interface Latency {
  p50: number | null;
  p90: number | null;
  p95: number | null;
  p99: number | null;
}

export interface StatsFigures {
  counts: Record<string, number>;
  rates: Rates;
  /** Accepted → sent, in milliseconds, over the `sent` events. */
  latencyMs: Latency;
}

export interface StatsGroup {
  /** The domain, priority, pool, tag, site, source address, bounce category or class, via or sending domain; null without groupBy. */
  key: string | null;
  totals: StatsFigures;
  /** Non-empty buckets in time order. */
  buckets: Array<StatsFigures & { start: string }>;
}

export interface StatsResult {
  from: string;
  to: string;
  interval: string;
  groupBy: GroupBy | null;
  groups: StatsGroup[];
}

interface Row {
  bucketMs?: number;
  key: string;
  type: string;
  events: number;
  latency: Array<number | null>;
}

/**
 * The group column per groupBy and the rollup pair that has it (`stats_per_minute<suffix>` and
 * `stats_per_hour<suffix>`): never taken from the request.
 */
const GROUPING: Record<GroupBy | 'none', { column: string; rollup: '' | '_by_tag' | '_by_site' | '_by_bounce' | '_by_engagement' }> = {
  none: { column: "''", rollup: '' },
  domain: { column: 'domain', rollup: '' },
  priority: { column: 'priority', rollup: '' },
  pool: { column: 'pool', rollup: '' },
  tag: { column: 'tag', rollup: '_by_tag' },
  site: { column: 'site', rollup: '_by_site' },
  source: { column: 'source_ip', rollup: '_by_site' },
  category: { column: 'bounce_category', rollup: '_by_site' },
  class: { column: 'bounce_class', rollup: '_by_bounce' },
  via: { column: 'via', rollup: '_by_bounce' },
  fromDomain: { column: 'from_domain', rollup: '_by_bounce' },
  // Opens and clicks only: human, or the machine rule that flagged them; first or repeat.
  engagement: { column: 'engagement', rollup: '_by_engagement' },
  first: { column: "if(first = 1, 'first', 'repeat')", rollup: '_by_engagement' },
};

export function rates(c: Record<string, number>): Rates {
  const ended = (c.sent ?? 0) + (c.bounced ?? 0) + (c.expired ?? 0);
  const attempts = (c.sent ?? 0) + (c.deferred ?? 0) + (c.bounced ?? 0);
  return {
    delivery: ended ? (c.sent ?? 0) / ended : null,
    bounce: ended ? (c.bounced ?? 0) / ended : null,
    deferral: attempts ? (c.deferred ?? 0) / attempts : null,
  };
}

const nan = (v: number | null | undefined): number | null => (v === null || v === undefined || Number.isNaN(v) ? null : v);

/** Folds the rows of one (bucket, key) — one per event type — into figures. */
export function figures(rows: Row[]): StatsFigures {
  const counts: Record<string, number> = Object.fromEntries(EVENT_TYPES.map((t) => [t, 0]));
  let latency: Latency = { p50: null, p90: null, p95: null, p99: null };
  for (const r of rows) {
    counts[r.type] = (counts[r.type] ?? 0) + Number(r.events);
    if (r.type === 'sent') latency = { p50: nan(r.latency[0]), p90: nan(r.latency[1]), p95: nan(r.latency[2]), p99: nan(r.latency[3]) };
  }
  return { counts, rates: rates(counts), latencyMs: latency };
}

const HOUR_MS = 3_600_000;

/**
 * Where the rows come from: for intervals of whole hours, the hourly rollup covers the whole
 * hours inside [from, to) and the minute rollup only the ragged edges, so a month reads ~60x
 * fewer rows; otherwise the minute rollup alone. Quantile states from both merge alike.
 */
export function rollupPlan(p: StatsParams): { hourly: { from: number; to: number } | null } {
  if (p.intervalMinutes % 60 !== 0) return { hourly: null };
  const from = Math.ceil(p.from / HOUR_MS) * HOUR_MS;
  const to = Math.floor(p.to / HOUR_MS) * HOUR_MS;
  return { hourly: from < to ? { from, to } : null };
}

function statsSql(db: string, p: StatsParams, withBucket: boolean): string {
  const { column: key, rollup } = GROUPING[p.groupBy ?? 'none'];
  const minuteTable = `${db}.stats_per_minute${rollup}`;
  const hourTable = `${db}.stats_per_hour${rollup}`;
  const columns = `minute, ${key} AS key, type, events, delivery_ms`;
  const inRange = (lo: string, hi: string): string => `minute >= fromUnixTimestamp64Milli({${lo}:Int64}) AND minute < fromUnixTimestamp64Milli({${hi}:Int64})`;
  const source = rollupPlan(p).hourly
    ? `SELECT ${columns} FROM ${hourTable} WHERE tenant = {tenant:String} AND ${inRange('hourFrom', 'hourTo')}
       UNION ALL
       SELECT ${columns} FROM ${minuteTable} WHERE tenant = {tenant:String} AND (${inRange('from', 'hourFrom')} OR ${inRange('hourTo', 'to')})`
    : `SELECT ${columns} FROM ${minuteTable} WHERE tenant = {tenant:String} AND ${inRange('from', 'to')}`;
  const bucket = withBucket ? 'toUnixTimestamp(toStartOfInterval(minute, toIntervalMinute({step:UInt32}))) * 1000 AS bucketMs,' : '';
  return `
    SELECT ${bucket} key, type, sum(events) AS events,
           quantilesTDigestMerge(${LATENCY_LEVELS})(delivery_ms) AS latency
    FROM (${source})
    GROUP BY ${withBucket ? 'bucketMs, ' : ''}key, type`;
}

function groupRows<T>(rows: Row[], by: (r: Row) => T): Map<T, Row[]> {
  const out = new Map<T, Row[]>();
  for (const r of rows) {
    const k = by(r);
    const list = out.get(k);
    if (list) list.push(r);
    else out.set(k, [r]);
  }
  return out;
}

export async function queryStats(ctx: QueryContext, tenant: string, p: StatsParams): Promise<StatsResult> {
  const hourly = rollupPlan(p).hourly;
  const params = { tenant, from: p.from, to: p.to, step: p.intervalMinutes, ...(hourly ? { hourFrom: hourly.from, hourTo: hourly.to } : {}) };
  const run = async (withBucket: boolean): Promise<Row[]> => {
    const rs = await ctx.client.query({ query: statsSql(ctx.database, p, withBucket), query_params: params, format: 'JSONEachRow', abort_signal: AbortSignal.timeout(ctx.timeoutMs) });
    return rs.json<Row>();
  };
  // Totals come from their own query: percentiles do not add up from buckets.
  const [bucketRows, totalRows] = await Promise.all([run(true), run(false)]);
  const bucketsByKey = groupRows(bucketRows, (r) => r.key);
  const groups: StatsGroup[] = [...groupRows(totalRows, (r) => r.key)].map(([key, rows]) => {
    const byBucket = groupRows(bucketsByKey.get(key) ?? [], (r) => Number(r.bucketMs));
    const buckets = [...byBucket]
      .sort(([a], [b]) => a - b)
      .map(([ms, rs]) => ({ start: new Date(ms).toISOString(), ...figures(rs) }));
    return { key: p.groupBy ? key : null, totals: figures(rows), buckets };
  });
  groups.sort((a, b) => sumCounts(b.totals) - sumCounts(a.totals) || String(a.key).localeCompare(String(b.key)));
  // Without groupBy there is always exactly one group, empty or not.
  if (!p.groupBy && groups.length === 0) groups.push({ key: null, totals: figures([]), buckets: [] });
  return { from: new Date(p.from).toISOString(), to: new Date(p.to).toISOString(), interval: p.interval, groupBy: p.groupBy ?? null, groups };
}

function sumCounts(f: StatsFigures): number {
  return Object.values(f.counts).reduce((a, b) => a + b, 0);
}
