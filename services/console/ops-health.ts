/**
 * What the "Pools and sites" page shows, kept in memory from `email.events` (the console's own
 * tail, so every replica serving the console knows what every dispatcher replica announced):
 * - pauses of source addresses and pools (`paused` / `resumed`, ops scope source or pool: the
 *   reason — bounce-rate, complaint-rate — the rate over its sample, and until when);
 * - pauses of tenants' sending domains (ops scope sender, the event's tenant);
 * - a site's adaptive back-off per source address (`throttled` / `recovered`, ops scope site:
 *   the share of the rule's limits in force, the connection cap and rate then in force);
 * - per site and per source address, delivery outcomes of the last `historyMinutes`
 *   (sent, deferred, bounced: the deferral rate) and deferrals because every host's circuit
 *   breaker was open (`SMTP_BREAKER_OPEN`) — breakers themselves live in each dispatcher
 *   process, so these deferrals are what every replica's events say about them.
 * Pure state: `apply` takes one event; readers answer from what was applied. What happened
 * before the tail's start (`historyMinutes` back) is not known here.
 */
import type { EmailEvent } from '../../shared/contracts/email-event.js';

export interface PauseState {
  scope: 'source' | 'pool' | 'sender';
  target: string;
  /** Sending domains only: whose. */
  tenant?: string;
  reason: string;
  rate?: number;
  sample?: number;
  /** When it resumes by itself (ISO). */
  until: string;
  at: string;
}

export interface SiteLimits {
  site: string;
  source: string;
  /** Share of the rule's limits in force (1: back at the rule). */
  factor: number;
  maxConnections?: number;
  perSecond?: number;
  reason: string;
  at: string;
}

export interface OutcomeRow {
  name: string;
  sent: number;
  deferred: number;
  bounced: number;
  /** deferred / (sent + deferred + bounced), 0..1. */
  deferralRate: number;
  breakerOpen: number;
  lastBreakerOpenAt?: string;
}

type Counts = { sent: number; deferred: number; bounced: number; breakerOpen: number; lastBreakerOpenAt?: string };

const MINUTE = 60_000;
const OUTCOMES = new Set(['sent', 'deferred', 'bounced']);

export class OpsHealth {
  private readonly pauses = new Map<string, PauseState>();
  private readonly limits = new Map<string, SiteLimits>();
  /** Per kind (site, source) and name: counts per minute. */
  private readonly outcomes = { site: new Map<string, Map<number, Counts>>(), source: new Map<string, Map<number, Counts>>() };
  private prunedMinute = 0;

  constructor(private readonly opts: { historyMinutes: number }) {}

  apply(e: EmailEvent): void {
    if (e.ops) return this.applyOps(e);
    if (!e.messageId || !OUTCOMES.has(e.type)) return;
    const atMs = Date.parse(e.at);
    if (!Number.isFinite(atMs)) return;
    const breaker = e.type === 'deferred' && /SMTP_BREAKER_OPEN/.test(e.reason ?? '');
    const site = e.site ?? (e.domain ? `domain ${e.domain}` : undefined);
    if (site) this.count(this.outcomes.site, site, e.type, atMs, breaker, e.at);
    if (e.source) this.count(this.outcomes.source, e.source, e.type, atMs, breaker, e.at);
    // Once a minute, minutes past the window go (and names left without any), so memory stays bounded.
    const minute = Math.floor(atMs / MINUTE) * MINUTE;
    if (minute > this.prunedMinute) {
      this.prunedMinute = minute;
      this.outcomesBy('site', atMs);
      this.outcomesBy('source', atMs);
    }
  }

  /** Paused sources and pools (tenant undefined), or a tenant's paused sending domains (every tenant's: `'*'`), still in force at `now`. */
  paused(now: number, which: { installation: true } | { tenant: string | '*' }): PauseState[] {
    return [...this.pauses.values()]
      .filter((p) => Date.parse(p.until) > now)
      .filter((p) => ('installation' in which ? p.scope !== 'sender' : p.scope === 'sender' && (which.tenant === '*' || p.tenant === which.tenant)))
      .sort((a, b) => a.scope.localeCompare(b.scope) || a.target.localeCompare(b.target));
  }

  /** A pause still in force at `now`, if any. */
  pausedOne(now: number, scope: PauseState['scope'], target: string, tenant?: string): PauseState | undefined {
    const p = this.pauses.get(pauseKey(scope, target, tenant));
    return p && Date.parse(p.until) > now ? p : undefined;
  }

  /** The latest limits per (site, source address): lowered ones first, then by site. */
  siteLimits(): SiteLimits[] {
    return [...this.limits.values()].sort((a, b) => Number(a.factor >= 1) - Number(b.factor >= 1) || a.site.localeCompare(b.site) || a.source.localeCompare(b.source));
  }

  /** Outcomes of the last `historyMinutes` before `now` per site or source address, most deferrals first. */
  outcomesBy(kind: 'site' | 'source', now: number): OutcomeRow[] {
    const oldest = Math.floor(now / MINUTE) * MINUTE - (this.opts.historyMinutes - 1) * MINUTE;
    const rows: OutcomeRow[] = [];
    for (const [name, minutes] of this.outcomes[kind]) {
      const t: Counts = { sent: 0, deferred: 0, bounced: 0, breakerOpen: 0 };
      for (const [m, c] of minutes) {
        if (m < oldest) {
          minutes.delete(m);
          continue;
        }
        t.sent += c.sent;
        t.deferred += c.deferred;
        t.bounced += c.bounced;
        t.breakerOpen += c.breakerOpen;
        if (c.lastBreakerOpenAt && (!t.lastBreakerOpenAt || c.lastBreakerOpenAt > t.lastBreakerOpenAt)) t.lastBreakerOpenAt = c.lastBreakerOpenAt;
      }
      const total = t.sent + t.deferred + t.bounced;
      if (total === 0) {
        this.outcomes[kind].delete(name);
        continue;
      }
      rows.push({ name, ...t, deferralRate: t.deferred / total });
    }
    return rows.sort((a, b) => b.deferred - a.deferred || b.sent + b.bounced - (a.sent + a.bounced) || a.name.localeCompare(b.name));
  }

  private applyOps(e: EmailEvent): void {
    const ops = e.ops!;
    if (ops.scope === 'source' || ops.scope === 'pool' || ops.scope === 'sender') {
      const tenant = ops.scope === 'sender' ? e.tenant : undefined;
      const key = pauseKey(ops.scope, ops.target, tenant);
      if (e.type === 'resumed') this.pauses.delete(key);
      else if (e.type === 'paused' && ops.until) {
        this.pauses.set(key, { scope: ops.scope, target: ops.target, ...(tenant !== undefined ? { tenant } : {}), reason: e.reason ?? '', ...(ops.rate !== undefined ? { rate: ops.rate } : {}), ...(ops.sample !== undefined ? { sample: ops.sample } : {}), until: ops.until, at: e.at });
      }
      return;
    }
    if (ops.scope === 'site' && (e.type === 'throttled' || e.type === 'recovered')) {
      const source = e.source ?? '';
      this.limits.set(`${ops.target}\u0000${source}`, {
        site: ops.target,
        source,
        factor: ops.factor ?? 1,
        ...(ops.maxConnections !== undefined ? { maxConnections: ops.maxConnections } : {}),
        ...(ops.perSecond !== undefined ? { perSecond: ops.perSecond } : {}),
        reason: e.reason ?? '',
        at: e.at,
      });
    }
  }

  private count(by: Map<string, Map<number, Counts>>, name: string, type: string, atMs: number, breaker: boolean, at: string): void {
    let minutes = by.get(name);
    if (!minutes) by.set(name, (minutes = new Map()));
    const m = Math.floor(atMs / MINUTE) * MINUTE;
    const c = minutes.get(m) ?? { sent: 0, deferred: 0, bounced: 0, breakerOpen: 0 };
    c[type as 'sent' | 'deferred' | 'bounced'] += 1;
    if (breaker) {
      c.breakerOpen += 1;
      if (!c.lastBreakerOpenAt || at > c.lastBreakerOpenAt) c.lastBreakerOpenAt = at;
    }
    minutes.set(m, c);
  }
}

function pauseKey(scope: string, target: string, tenant?: string): string {
  return `${scope}\u0000${tenant ?? ''}\u0000${target}`;
}
