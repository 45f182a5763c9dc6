/**
 * Warm-up of a source address: a daily cap that ramps by day, from the routing file:
 *
 * ```yaml
 * warmup:
 *   start: "2026-12-01"             # day 1 (UTC)
 *   schedule: [[1, 50], [2, 100], [3, 500], [5, 1000], [8, 5000], [15, 20000]]   # day 15 is the last capped day
 *   after: 50000                    # optional cap once the schedule ends; without it, no cap
 * ```
 *
 * `[day, cap]` pairs: a day without an entry keeps the cap of the last entry before it; before
 * the start date the first entry's cap applies; after the last entry's day, `after` (or no cap). Counting is per UTC day through a `SentCounter`:
 * the in-memory `DayCounter` counts what this process sent — per replica, and from 0 after a
 * restart — so with several dispatcher replicas either give each its share of the cap or feed a
 * shared counter (e.g. from a tail of email.events' `sent` events, all replicas included).
 */
import { Type, type Static } from '@sinclair/typebox';

/** The `warmup` block of a source address in the routing file (mx includes it in its schema). */
export const WarmupSchema = Type.Object(
  {
    start: Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$', description: 'Day 1 of the schedule (UTC date, YYYY-MM-DD).' }),
    schedule: Type.Array(Type.Tuple([Type.Integer({ minimum: 1 }), Type.Integer({ minimum: 0 })]), {
      minItems: 1,
      description: '[day, daily cap] pairs, days increasing; a day keeps the cap of the last entry at or before it.',
    }),
    after: Type.Optional(Type.Integer({ minimum: 0, description: 'Daily cap once the schedule has ended; without it, none.' })),
  },
  { additionalProperties: false },
);
export type WarmupPlan = Static<typeof WarmupSchema>;

const DAY_MS = 86_400_000;

/** What TypeBox cannot say about a plan: a real date, days strictly increasing. `path` prefixes each problem. */
export function warmupProblems(plan: WarmupPlan, path: string): string[] {
  const problems: string[] = [];
  if (Number.isNaN(Date.parse(`${plan.start}T00:00:00Z`))) problems.push(`${path}.start: not a date: ${plan.start}`);
  plan.schedule.forEach(([day], i) => {
    if (i > 0 && day <= plan.schedule[i - 1][0]) problems.push(`${path}.schedule[${i}]: day ${day} does not come after day ${plan.schedule[i - 1][0]}`);
  });
  return problems;
}

/** The UTC day number of `at`, counting the start date as day 1. */
export function warmupDay(plan: WarmupPlan, at: number): number {
  return Math.floor((at - Date.parse(`${plan.start}T00:00:00Z`)) / DAY_MS) + 1;
}

/** The daily cap in force at `at` (Infinity: no cap). */
export function dailyCap(plan: WarmupPlan, at: number): number {
  const day = warmupDay(plan, at);
  const last = plan.schedule[plan.schedule.length - 1];
  // Past the last entry's day the ramp is over.
  if (day > last[0]) return plan.after ?? Infinity;
  let cap = plan.schedule[0][1];
  for (const [d, c] of plan.schedule) if (d <= day) cap = c;
  return cap;
}

/** The UTC date of `at` (YYYY-MM-DD): the key of a day's counter. */
export const utcDay = (at: number): string => new Date(at).toISOString().slice(0, 10);

/** Messages sent per source address per UTC day. */
export interface SentCounter {
  add(source: string, at: number): void;
  count(source: string, at: number): number;
}

/** This process's own count; forgets earlier days. Per replica, 0 after a restart. */
export class DayCounter implements SentCounter {
  private day = '';
  private counts = new Map<string, number>();

  add(source: string, at: number): void {
    this.roll(at);
    this.counts.set(source, (this.counts.get(source) ?? 0) + 1);
  }

  count(source: string, at: number): number {
    this.roll(at);
    return this.counts.get(source) ?? 0;
  }

  private roll(at: number): void {
    const d = utcDay(at);
    if (d !== this.day) {
      this.day = d;
      this.counts = new Map();
    }
  }
}

export interface WarmupUsage {
  source: string;
  day: number;
  cap: number;
  sent: number;
}

/** A claim not settled within this long (its message lost track of) stops counting. */
const CLAIM_TTL_MS = 10 * 60_000;

/** The warm-up plans of the source addresses that have one, and their day counters. */
export class Warmup {
  /** Messages routed through an address and not yet sent or given up, by claim time. */
  private readonly claims = new Map<string, number[]>();

  constructor(
    private readonly plans: ReadonlyMap<string, WarmupPlan>,
    private readonly counter: SentCounter = new DayCounter(),
  ) {}

  /**
   * Whether `source` may send one more message today (addresses without a plan always may),
   * counting the messages already routed through it and still on their way.
   */
  available(source: string, now: number): boolean {
    const plan = this.plans.get(source);
    return !plan || this.counter.count(source, now) + this.inFlight(source, now) < dailyCap(plan, now);
  }

  /**
   * Reserves one of today's messages of `source` for a message about to go: messages routed at
   * once cannot all pass the cap before the first of them is counted. False when none is left.
   */
  claim(source: string, now: number): boolean {
    if (!this.plans.has(source)) return true;
    if (!this.available(source, now)) return false;
    this.claims.set(source, [...(this.claims.get(source) ?? []), now]);
    return true;
  }

  /** Gives back a claim whose message did not go (deferred, bounced, failed). */
  release(source: string): void {
    this.claims.get(source)?.shift();
  }

  private inFlight(source: string, now: number): number {
    const list = this.claims.get(source);
    if (!list) return 0;
    while (list.length > 0 && list[0] <= now - CLAIM_TTL_MS) list.shift();
    return list.length;
  }

  /** Counts one message sent through `source` (settling its claim); returns the usage when this one reached the cap. */
  record(source: string, now: number): WarmupUsage | undefined {
    this.release(source);
    this.counter.add(source, now);
    const u = this.usage(source, now);
    return u && u.sent === u.cap ? u : undefined;
  }

  usage(source: string, now: number): WarmupUsage | undefined {
    const plan = this.plans.get(source);
    if (!plan) return undefined;
    return { source, day: warmupDay(plan, now), cap: dailyCap(plan, now), sent: this.counter.count(source, now) };
  }

  sources(): string[] {
    return [...this.plans.keys()];
  }
}
