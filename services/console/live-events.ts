/**
 * What the console's overview shows, kept in memory from `email.events` (fed by `event-tail.ts`):
 * per tenant, counts per minute and event type for the last `historyMinutes`, the most recent
 * events (the live feed), and per-tag counts (a batch's or campaign's progress). Pure state:
 * `apply` takes one event, the readers answer from what was applied. Emits `'event'`
 * (tenant, FeedItem) for every applied event so server push can forward it.
 */
import { EventEmitter } from 'node:events';
import type { EmailEvent } from '../../shared/contracts/email-event.js';

/** The event types the overview counts, in the order it shows them. */
export const COUNTED_TYPES = ['accepted', 'sent', 'deferred', 'bounced', 'expired', 'failed', 'suppressed', 'opened', 'clicked', 'complained', 'unsubscribed'] as const;
export type CountedType = (typeof COUNTED_TYPES)[number];
export type Counts = Partial<Record<CountedType, number>>;

/** One line of the live feed. */
export interface FeedItem {
  at: string;
  type: string;
  messageId: string;
  recipients: string[];
  tags: string[];
  /** The SMTP reply or reason, when the event has one. */
  detail?: string;
}

export interface MinuteRow {
  /** Start of the minute (ISO). */
  minute: string;
  counts: Counts;
}

export interface TagProgress {
  tag: string;
  counts: Counts;
  lastAt: string;
}

interface TenantState {
  minutes: Map<number, Counts>;
  recent: FeedItem[];
  tags: Map<string, TagProgress>;
}

export interface LiveEventsOptions {
  historyMinutes: number;
  /** Feed items kept per tenant (default 50). */
  recentPerTenant?: number;
  /** Tags tracked per tenant, the least recently seen dropped first (default 200). */
  tagsPerTenant?: number;
}

const MINUTE = 60_000;
const isCounted = (t: string): t is CountedType => (COUNTED_TYPES as readonly string[]).includes(t);

export class LiveEvents extends EventEmitter {
  private readonly tenants = new Map<string, TenantState>();
  private readonly recentPerTenant: number;
  private readonly tagsPerTenant: number;

  constructor(private readonly opts: LiveEventsOptions) {
    super();
    this.recentPerTenant = opts.recentPerTenant ?? 50;
    this.tagsPerTenant = opts.tagsPerTenant ?? 200;
  }

  /** Applies one event; ops events (no message) and other tenants' events stay apart. */
  apply(e: EmailEvent): void {
    if (!e.messageId || !e.tenant) return;
    const state = this.state(e.tenant);
    const atMs = Date.parse(e.at);
    if (isCounted(e.type) && Number.isFinite(atMs)) {
      const minute = Math.floor(atMs / MINUTE) * MINUTE;
      const counts = state.minutes.get(minute) ?? {};
      counts[e.type] = (counts[e.type] ?? 0) + 1;
      state.minutes.set(minute, counts);
      this.prune(state, atMs);
      for (const tag of e.tags ?? []) this.countTag(state, tag, e.type, e.at);
    }
    const item = feedItem(e);
    state.recent.unshift(item);
    if (state.recent.length > this.recentPerTenant) state.recent.length = this.recentPerTenant;
    this.emit('event', e.tenant, item);
  }

  /** The tenant's most recent events, newest first. */
  recent(tenant: string): FeedItem[] {
    return [...(this.tenants.get(tenant)?.recent ?? [])];
  }

  /** One row per minute of the last `historyMinutes` up to `now`, newest first (minutes without events included). */
  minutes(tenant: string, now: number, rows = this.opts.historyMinutes): MinuteRow[] {
    const state = this.tenants.get(tenant);
    const last = Math.floor(now / MINUTE) * MINUTE;
    const out: MinuteRow[] = [];
    for (let i = 0; i < rows; i++) {
      const m = last - i * MINUTE;
      out.push({ minute: new Date(m).toISOString(), counts: { ...(state?.minutes.get(m) ?? {}) } });
    }
    return out;
  }

  /** Totals over the kept minutes. */
  totals(tenant: string): Counts {
    const out: Counts = {};
    for (const counts of this.tenants.get(tenant)?.minutes.values() ?? []) {
      for (const [t, n] of Object.entries(counts) as Array<[CountedType, number]>) out[t] = (out[t] ?? 0) + n;
    }
    return out;
  }

  /** Per-tag counts, most recently active first. */
  tags(tenant: string): TagProgress[] {
    return [...(this.tenants.get(tenant)?.tags.values() ?? [])].map((t) => ({ ...t, counts: { ...t.counts } })).sort((a, b) => b.lastAt.localeCompare(a.lastAt) || a.tag.localeCompare(b.tag));
  }

  private state(tenant: string): TenantState {
    let s = this.tenants.get(tenant);
    if (!s) this.tenants.set(tenant, (s = { minutes: new Map(), recent: [], tags: new Map() }));
    return s;
  }

  private prune(state: TenantState, latestMs: number): void {
    const oldest = Math.floor(latestMs / MINUTE) * MINUTE - (this.opts.historyMinutes - 1) * MINUTE;
    for (const m of state.minutes.keys()) if (m < oldest) state.minutes.delete(m);
  }

  private countTag(state: TenantState, tag: string, type: CountedType, at: string): void {
    const t = state.tags.get(tag) ?? { tag, counts: {}, lastAt: at };
    t.counts[type] = (t.counts[type] ?? 0) + 1;
    if (at > t.lastAt) t.lastAt = at;
    // Re-inserted so the map's order is least recently seen first.
    state.tags.delete(tag);
    state.tags.set(tag, t);
    if (state.tags.size > this.tagsPerTenant) state.tags.delete(state.tags.keys().next().value!);
  }
}

function feedItem(e: EmailEvent): FeedItem {
  const smtp = e.smtp ? [e.smtp.code, e.smtp.enhanced, e.smtp.message].filter((x) => x !== undefined && x !== '').join(' ') : '';
  const detail = smtp || e.reason || '';
  return { at: e.at, type: e.type, messageId: e.messageId, recipients: e.recipients ?? [], tags: e.tags ?? [], ...(detail ? { detail } : {}) };
}
