/**
 * The `Shaper` the dispatcher calls around every SMTP send (see the README, "Traffic shaping"):
 * `admit` before a message goes (send tokens of its (source address, site), and of its
 * recipient domain when that has a rule of its own), `limits` for the fleet of a
 * (source, site), `observe` for every reply (throttling replies slow the key down),
 * `sourceAvailable` / `recordSent` / `recordBounce` for warm-up caps and auto-pause.
 *
 * Emits (metrics and logs subscribe): 'admitted', 'deferred', 'throttle', 'shaping-change',
 * 'source-paused', 'source-resumed', 'warmup-capped'.
 */
import { EventEmitter } from 'node:events';
import type { Static } from '@sinclair/typebox';
import type { ShapingSection } from '../../../shared/config/dispatcher.js';
import type { Priority } from '../../../shared/config.js';
import { TransientError } from '../../../shared/errors.js';
import { AdmissionQueue } from './admission-queue.js';
import { initialAdaptive, nextTickAt, onThrottle, onTick, type AdaptiveOptions, type AdaptiveState } from './adaptive.js';
import { AutoPause, type AutoPauseOptions, type PauseTransition } from './auto-pause.js';
import { systemClock, type Clock, type TimerHandle } from './clock.js';
import type { ShapingDeferral, DeferralReason } from './shaping-deferral.js';
import { loadShapingRules, type ResolvedRule, type ShapingRules } from './shaping-rules.js';
import { siteKeyDomainWindows, siteKeyRule } from './site-shards.js';
import { throttleReason, type ObservedReply, type ThrottleReason } from './throttle-replies.js';
import { TokenBucket } from './token-bucket.js';
import { Warmup, type SentCounter, type WarmupPlan, type WarmupUsage } from './warmup.js';

export { ShapingDeferral } from './shaping-deferral.js';

export interface ShapingKey {
  source: string;
  site: string;
  domain: string;
}

export interface ConnectionLimits {
  maxConnections: number;
  maxMessagesPerConnection: number;
}

export interface Shaper {
  /** Waits for a send token of (source, site); rejects with ShapingDeferral (code 'SHAPING_DEFERRED',
   *  retriable) when the wait would exceed the configured bound or the waiting queue is full. */
  admit(key: ShapingKey, priority: Priority): Promise<void>;
  /** Connection limits for the fleet of (source, site). */
  limits(key: ShapingKey): ConnectionLimits;
  /** Every SMTP reply (or connection error) seen for (source, site); throttling replies slow it down. */
  observe(key: ShapingKey, reply: ObservedReply): void;
  /** Whether a source address may take one more message today (warm-up) and is not paused (nor its pool). */
  sourceAvailable(source: string, pool?: string): boolean;
  /**
   * Reserves one of today's warm-up messages of `source` for a message routed through it (false
   * when the cap, claims in flight included, is reached). `recordSent` settles the claim;
   * `release` gives it back when the message did not go. Optional: without it, the cap is only
   * checked by `sourceAvailable`.
   */
  claim?(source: string): boolean;
  release?(source: string): void;
  /** Counts a message that left through `source` (warm-up day counter, auto-pause window). */
  recordSent(source: string, pool?: string): void;
  /** Counts a bounce through `source`; only recipient-class bounces can pause it. */
  recordBounce(source: string, recipientClass: boolean, pool?: string): void;
  /** Whether the tenant's sending domain is paused by its bounce or complaint rate (optional: never). */
  senderPaused?(tenant: string, domain: string): boolean;
}

/** A (source, site)'s limits in force, for events and metrics (perSecond: Infinity when unlimited). */
export interface EffectiveLimits {
  perSecond: number;
  maxConnections: number;
  factor: number;
}

export interface ShaperEvents {
  admitted: [{ source: string; site: string; priority: Priority; waitedMs: number }];
  deferred: [{ source: string; site: string; priority: Priority; reason: DeferralReason; error: ShapingDeferral }];
  throttle: [{ source: string; site: string; reason: ThrottleReason; reply: ObservedReply }];
  'shaping-change': [{ key: string; source: string; site: string; from: EffectiveLimits; to: EffectiveLimits; reason: string }];
  'source-paused': [{ target: string; kind: 'source' | 'pool'; reason: 'bounce-rate' | 'complaint-rate'; rate: number; sample: number; until: number }];
  'source-resumed': [{ target: string; kind: 'source' | 'pool'; reason: 'cooldown' | 'command' }];
  'warmup-capped': [WarmupUsage];
  'sender-paused': [{ tenant: string; domain: string; reason: 'bounce-rate' | 'complaint-rate'; rate: number; sample: number; until: number }];
  'sender-resumed': [{ tenant: string; domain: string; reason: 'cooldown' | 'command' }];
}

/** A pause or resume read from email.events (any replica's, this one's too), applied here. */
export type PauseNotice =
  | { paused: true; scope: 'source' | 'pool' | 'sender'; target: string; tenant?: string; until: number }
  | { paused: false; scope: 'source' | 'pool' | 'sender'; target: string; tenant?: string };

/** What became of one message of a sending domain (tenant + From domain), from email.events. */
export type SenderOutcome = 'sent' | 'bounced' | 'recipient-bounce' | 'complaint';

/** The dispatcher's `dispatcher.shaping` options. */
export type ShapingSettings = Static<typeof ShapingSection>;

export interface ShaperDeps {
  rules: ShapingRules;
  settings: ShapingSettings;
  /** Warm-up plans by source address (from the routing file). */
  warmup?: ReadonlyMap<string, WarmupPlan>;
  /** The warm-up day counter (default: this process's own). */
  counter?: SentCounter;
  /**
   * The pools a source address belongs to (from the routing file): complaints that name a
   * source address count for its pools too. Addresses it does not know are not counted.
   */
  poolsOf?: (source: string) => readonly string[] | undefined;
  clock?: Clock;
}

interface SiteState {
  source: string;
  site: string;
  rule: ResolvedRule;
  bucket: TokenBucket;
  adaptive: AdaptiveState;
  /** '' for the site's own queue; a domain with its own rule has a queue (and bucket) of its own. */
  queues: Map<string, AdmissionQueue>;
  timer?: TimerHandle;
  lastUsed: number;
}

const POOL = 'pool:';
const SWEEP_EVERY_MS = 60_000;
const IDLE_MS = 10 * 60_000;

export class TrafficShaper extends EventEmitter<ShaperEvents> implements Shaper {
  private readonly sites = new Map<string, SiteState>();
  private readonly warmup: Warmup;
  private readonly pause: AutoPause;
  /**
   * Source addresses and pools: complaint rate (complaints whose report names the address, over
   * the `sent` events of every replica), on the sending-domain window — complaints arrive hours
   * after the message.
   */
  private readonly sourceComplaints: AutoPause;
  /** Sending domains (`tenant\u0000domain`): recipient-class hard-bounce rate, and complaint rate. */
  private readonly senderBounces: AutoPause;
  private readonly senderComplaints: AutoPause;
  private readonly clock: Clock;
  private readonly adaptive: AdaptiveOptions;
  private pauseTimer?: TimerHandle;
  private lastSweep: number;
  private closed = false;

  constructor(private readonly deps: ShaperDeps) {
    super();
    this.clock = deps.clock ?? systemClock;
    this.lastSweep = this.clock.now();
    const s = deps.settings;
    this.adaptive = { throttleFactor: s.throttleFactor, minFactor: s.minFactor, holdMs: s.throttleHoldMs, cooldownMs: s.cooldownMs, recoverStepMs: s.recoverStepMs };
    this.warmup = new Warmup(deps.warmup ?? new Map(), deps.counter);
    const pause: AutoPauseOptions = { windowMs: s.pauseWindowMs, minSample: s.pauseMinSample, threshold: s.pauseBounceRate, cooldownMs: s.pauseCooldownMs };
    this.pause = new AutoPause(pause);
    const sender = { windowMs: s.senderWindowMs, minSample: s.senderMinSample, cooldownMs: s.senderCooldownMs };
    this.senderBounces = new AutoPause({ ...sender, threshold: s.senderBounceRate });
    // A complaint counts as an outcome of its own in the sample (c / (sent + c)): at 0.3 % the
    // difference from c / sent is a rounding error, and it keeps AutoPause as it is.
    this.senderComplaints = new AutoPause({ ...sender, threshold: s.senderComplaintRate });
    this.sourceComplaints = new AutoPause({ windowMs: s.senderWindowMs, minSample: s.senderMinSample, threshold: s.pauseComplaintRate, cooldownMs: s.pauseCooldownMs });
  }

  /**
   * One message of a source address, any replica's (from email.events): a `sent` through it, or a
   * `complained` whose report named it (ARF Source-IP). Counts for the address and its pools;
   * an address of no configured pool is not ours and is not counted.
   */
  recordSourceFeedback(source: string, outcome: 'sent' | 'complaint'): void {
    const pools = this.deps.poolsOf?.(source);
    if (!pools) return;
    const now = this.clock.now();
    const kind = outcome === 'sent' ? 'sent' : 'recipient-bounce';
    const transitions: PauseTransition[] = [];
    for (const key of [source, ...pools.map((p) => POOL + p)]) {
      const held = this.pause.paused(key, now);
      const t = this.sourceComplaints.record(key, kind, now);
      // Paused by its bounce rate already: one announcement is enough.
      if (t && !held) transitions.push({ ...t, reason: 'complaint-rate' });
    }
    if (transitions.length > 0) this.onPause(transitions);
  }

  /**
   * One message of a sending domain, any replica's (read from email.events by every replica, so
   * each computes the domain's rates over all of its traffic): a `sent`, a `bounced` (recipient
   * class or not), or a `complained` (asynchronous, from feedback).
   */
  recordSender(tenant: string, domain: string, outcome: SenderOutcome): void {
    const key = senderKey(tenant, domain);
    const now = this.clock.now();
    const bounce = outcome === 'complaint' ? undefined : this.senderBounces.record(key, outcome, now);
    const complaint = outcome === 'sent' ? this.senderComplaints.record(key, 'sent', now) : outcome === 'complaint' ? this.senderComplaints.record(key, 'recipient-bounce', now) : undefined;
    for (const [t, reason] of [[bounce, 'bounce-rate'], [complaint, 'complaint-rate']] as const) {
      // Paused by one rate while the other already holds it: one announcement is enough.
      if (!t || (reason === 'complaint-rate' ? this.senderBounces : this.senderComplaints).paused(key, now)) continue;
      this.emit('sender-paused', { tenant, domain: domain.toLowerCase(), reason, rate: t.rate ?? 0, sample: t.sample ?? 0, until: t.until ?? 0 });
    }
    if (bounce || complaint) this.schedulePauseTimer();
  }

  /** Whether the tenant's sending domain is paused (its mail is deferred with SENDER_PAUSED). */
  senderPaused(tenant: string, domain: string): boolean {
    const key = senderKey(tenant, domain);
    const now = this.clock.now();
    return this.senderBounces.paused(key, now) || this.senderComplaints.paused(key, now);
  }

  /** Resumes a paused sending domain at once; false when it was not paused. */
  resumeSender(tenant: string, domain: string): boolean {
    const key = senderKey(tenant, domain);
    const a = this.senderBounces.resume(key);
    const b = this.senderComplaints.resume(key);
    if (!a && !b) return false;
    this.emit('sender-resumed', { tenant, domain: domain.toLowerCase(), reason: 'command' });
    this.schedulePauseTimer();
    return true;
  }

  /** Paused sending domains (of `tenant` only, when given), with when each resumes by itself. */
  pausedSenders(tenant?: string): Array<{ tenant: string; domain: string; until: number }> {
    const until = new Map<string, number>();
    for (const p of [...this.senderBounces.pausedKeys(), ...this.senderComplaints.pausedKeys()]) until.set(p.key, Math.max(until.get(p.key) ?? 0, p.until));
    return [...until]
      .map(([key, u]) => ({ ...splitSender(key), until: u }))
      .filter((p) => tenant === undefined || p.tenant === tenant);
  }

  /**
   * Applies a pause or resume another replica announced (or this one: then nothing changes), so
   * that every replica holds the same pauses. Emits nothing: the announcing replica did.
   */
  applyNotice(n: PauseNotice): void {
    const now = this.clock.now();
    const key = n.scope === 'pool' ? POOL + n.target : n.scope === 'sender' ? senderKey(n.tenant ?? '', n.target) : n.target;
    const table = n.scope === 'sender' ? this.senderBounces : this.pause;
    if (n.paused) table.hold(key, n.until, now);
    else if (n.scope === 'sender') {
      this.senderBounces.resume(key);
      this.senderComplaints.resume(key);
    } else {
      this.pause.resume(key);
      this.sourceComplaints.resume(key);
    }
    this.schedulePauseTimer();
  }

  admit(key: ShapingKey, priority: Priority): Promise<void> {
    if (this.closed) return Promise.reject(new TransientError('SHAPER_CLOSED', 'shaper is closed'));
    this.sweep();
    const st = this.state(key);
    return this.queueOf(st, key.domain).admit(priority);
  }

  limits(key: ShapingKey): ConnectionLimits {
    const st = this.state(key);
    return { maxConnections: this.effective(st).maxConnections, maxMessagesPerConnection: st.rule.messagesPerConnection };
  }

  observe(key: ShapingKey, reply: ObservedReply): void {
    const reason = throttleReason(reply);
    if (!reason) return;
    const st = this.state(key);
    this.emit('throttle', { source: st.source, site: st.site, reason, reply });
    const { state, change } = onThrottle(st.adaptive, this.clock.now(), this.adaptive);
    this.apply(st, state, change ? `throttled (${reason})` : undefined);
  }

  sourceAvailable(source: string, pool?: string): boolean {
    const now = this.clock.now();
    const paused = (key: string): boolean => this.pause.paused(key, now) || this.sourceComplaints.paused(key, now);
    if (paused(source) || (pool !== undefined && paused(POOL + pool))) return false;
    return this.warmup.available(source, now);
  }

  claim(source: string): boolean {
    return this.warmup.claim(source, this.clock.now());
  }

  release(source: string): void {
    this.warmup.release(source);
  }

  recordSent(source: string, pool?: string): void {
    const now = this.clock.now();
    const capped = this.warmup.record(source, now);
    if (capped) this.emit('warmup-capped', capped);
    this.recordOutcome(source, pool, 'sent', now);
  }

  recordBounce(source: string, recipientClass: boolean, pool?: string): void {
    this.recordOutcome(source, pool, recipientClass ? 'recipient-bounce' : 'bounced', this.clock.now());
  }

  /** Resumes a paused source address (or, with kind 'pool', a pool) at once; false when it was not paused. */
  resume(target: string, kind: 'source' | 'pool' = 'source'): boolean {
    const key = kind === 'pool' ? POOL + target : target;
    const t = this.pause.resume(key) ?? this.sourceComplaints.resume(key);
    // Paused by both rates: both end (one announcement).
    this.sourceComplaints.resume(key);
    if (t) this.onPause([t]);
    return t !== undefined;
  }

  /** Paused addresses and pools, with when each resumes by itself. */
  paused(): Array<{ target: string; kind: 'source' | 'pool'; until: number }> {
    const until = new Map<string, number>();
    for (const p of [...this.pause.pausedKeys(), ...this.sourceComplaints.pausedKeys()]) until.set(p.key, Math.max(until.get(p.key) ?? 0, p.until));
    return [...until].map(([key, u]) => ({ ...split(key), until: u }));
  }

  /** Sites with a rule of their own (the bounded set metrics label by). */
  siteNames(): string[] {
    return Object.keys(this.deps.rules.sites);
  }

  /** Warm-up usage of every address with a plan. */
  warmupUsage(): WarmupUsage[] {
    const now = this.clock.now();
    return this.warmup.sources().flatMap((s) => this.warmup.usage(s, now) ?? []);
  }

  /** Limits in force for every (source, site) seen recently. */
  current(): Array<{ source: string; site: string } & EffectiveLimits> {
    return [...this.sites.values()].map((st) => ({ source: st.source, site: st.site, ...this.effective(st) }));
  }

  /** Messages waiting for tokens of (source, site), all domains. */
  waiting(key: Pick<ShapingKey, 'source' | 'site'>): number {
    const st = this.sites.get(siteKey(key));
    return st ? [...st.queues.values()].reduce((n, q) => n + q.size, 0) : 0;
  }

  /** Rejects every waiting message (retriable) and stops the timers. Safe to call twice. */
  close(): void {
    this.closed = true;
    const err = new TransientError('SHAPER_CLOSED', 'shaper is closing');
    for (const st of this.sites.values()) {
      st.timer?.cancel();
      for (const q of st.queues.values()) q.close(err);
    }
    this.pauseTimer?.cancel();
  }

  private recordOutcome(source: string, pool: string | undefined, kind: 'sent' | 'bounced' | 'recipient-bounce', now: number): void {
    const paused = [this.pause.record(source, kind, now), pool !== undefined ? this.pause.record(POOL + pool, kind, now) : undefined];
    // Paused by its complaint rate already: one announcement is enough.
    const transitions = paused.filter((t): t is PauseTransition => t !== undefined && !this.sourceComplaints.paused(t.key, now));
    if (transitions.length > 0) this.onPause(transitions);
  }

  private onPause(transitions: PauseTransition[]): void {
    for (const t of transitions) {
      const { target, kind } = split(t.key);
      if (t.paused) this.emit('source-paused', { target, kind, reason: t.reason === 'complaint-rate' ? 'complaint-rate' : 'bounce-rate', rate: t.rate ?? 0, sample: t.sample ?? 0, until: t.until ?? 0 });
      else this.emit('source-resumed', { target, kind, reason: t.reason === 'command' ? 'command' : 'cooldown' });
    }
    this.schedulePauseTimer();
  }

  private schedulePauseTimer(): void {
    this.pauseTimer?.cancel();
    const dues = [this.pause.nextDue(), this.sourceComplaints.nextDue(), this.senderBounces.nextDue(), this.senderComplaints.nextDue()].filter((d): d is number => d !== undefined);
    if (dues.length === 0 || this.closed) return;
    this.pauseTimer = this.clock.schedule(Math.min(...dues) - this.clock.now(), () => {
      this.pauseTimer = undefined;
      const now = this.clock.now();
      const senders = new Set([...this.senderBounces.due(now), ...this.senderComplaints.due(now)].map((t) => t.key));
      for (const key of senders) if (!this.senderPaused(splitSender(key).tenant, splitSender(key).domain)) this.emit('sender-resumed', { ...splitSender(key), reason: 'cooldown' });
      // A key paused by both rates resumes when both cool-downs have passed.
      const resumed = [...this.pause.due(now), ...this.sourceComplaints.due(now)];
      this.onPause(resumed.filter((t, i) => resumed.findIndex((x) => x.key === t.key) === i && !this.pause.paused(t.key, now) && !this.sourceComplaints.paused(t.key, now)));
    }, { background: true });
  }

  private state(key: Pick<ShapingKey, 'source' | 'site'>): SiteState {
    const k = siteKey(key);
    let st = this.sites.get(k);
    const now = this.clock.now();
    if (!st) {
      // `key.site` is the record's site key: a shard (`gmail#2`) gets its share of the site's rule.
      const rule = siteKeyRule(this.deps.rules, key.site);
      st = { source: key.source, site: key.site, rule, bucket: new TokenBucket(rule.windows, this.deps.settings.burstMs, now), adaptive: initialAdaptive(), queues: new Map(), lastUsed: now };
      this.sites.set(k, st);
    }
    st.lastUsed = now;
    return st;
  }

  private queueOf(st: SiteState, domain: string): AdmissionQueue {
    const own = siteKeyDomainWindows(this.deps.rules, st.site, domain);
    const name = own ? domain.toLowerCase() : '';
    let q = st.queues.get(name);
    if (!q) {
      const buckets = own ? [st.bucket, new TokenBucket(own, this.deps.settings.burstMs, this.clock.now())] : [st.bucket];
      const opts = { maxWaiting: this.deps.settings.maxWaiting, maxWaitMs: this.deps.settings.maxWaitMs };
      q = new AdmissionQueue(`${siteKey(st)}${name ? `|${name}` : ''}`, buckets, this.clock, opts, {
        admitted: (ms, priority) => this.emit('admitted', { source: st.source, site: st.site, priority, waitedMs: ms }),
        deferred: (error, priority) => this.emit('deferred', { source: st.source, site: st.site, priority, reason: error.reason, error }),
      });
      st.queues.set(name, q);
    }
    return q;
  }

  private effective(st: SiteState): EffectiveLimits {
    const factor = st.adaptive.factor;
    return { perSecond: st.bucket.perSecond(), maxConnections: Math.max(1, Math.floor(st.rule.maxConnections * factor)), factor };
  }

  /** Puts a new adaptive state in force: rates, queues woken, recovery timer, event. */
  private apply(st: SiteState, next: AdaptiveState, reason: string | undefined): void {
    const from = this.effective(st);
    st.adaptive = next;
    if (reason) {
      st.bucket.setFactor(next.factor, this.clock.now());
      for (const q of st.queues.values()) q.pump();
      this.emit('shaping-change', { key: siteKey(st), source: st.source, site: st.site, from, to: this.effective(st), reason });
    }
    st.timer?.cancel();
    st.timer = undefined;
    const at = nextTickAt(next);
    if (at !== undefined && !this.closed) {
      st.timer = this.clock.schedule(at - this.clock.now(), () => {
        const { state, change } = onTick(st.adaptive, this.clock.now(), this.adaptive);
        this.apply(st, state, change ? 'recovered' : undefined);
      }, { background: true });
    }
  }

  /** Forgets (source, site) states nobody used for a while that hold nothing (at the rule, none waiting). */
  private sweep(): void {
    const now = this.clock.now();
    if (now - this.lastSweep < SWEEP_EVERY_MS) return;
    this.lastSweep = now;
    for (const [k, st] of this.sites) {
      const waiting = [...st.queues.values()].some((q) => q.size > 0);
      if (now - st.lastUsed > IDLE_MS && st.adaptive.factor >= 1 && !waiting) this.sites.delete(k);
    }
  }
}

const siteKey = (k: Pick<ShapingKey, 'source' | 'site'>): string => `${k.source}|${k.site}`;

// NUL separates tenant and domain: tenants may contain '/' (`acme/eu`), domains are lower-cased.
const senderKey = (tenant: string, domain: string): string => `${tenant}\u0000${domain.toLowerCase()}`;

function splitSender(key: string): { tenant: string; domain: string } {
  const i = key.lastIndexOf('\u0000');
  return { tenant: key.slice(0, i), domain: key.slice(i + 1) };
}

function split(key: string): { target: string; kind: 'source' | 'pool' } {
  return key.startsWith(POOL) ? { target: key.slice(POOL.length), kind: 'pool' } : { target: key, kind: 'source' };
}

/** A shaper that limits nothing (the relay route, or before shaping is configured). */
export const unlimitedShaper: Shaper = {
  admit: () => Promise.resolve(),
  limits: () => ({ maxConnections: Number.MAX_SAFE_INTEGER, maxMessagesPerConnection: Number.MAX_SAFE_INTEGER }),
  observe: () => {},
  sourceAvailable: () => true,
  recordSent: () => {},
  recordBounce: () => {},
};

/**
 * The shaper of a dispatcher: rules from `dispatcher.shapingFile` over the shipped defaults
 * (throws ConfigError naming every bad key) unless the caller read them already (`opts.rules`),
 * options from `dispatcher.shaping`.
 */
export function createShaper(
  config: { shapingFile: string; shaping: ShapingSettings },
  opts: Omit<ShaperDeps, 'rules' | 'settings'> & { rules?: ShapingRules } = {},
): TrafficShaper {
  const { rules, ...deps } = opts;
  return new TrafficShaper({ rules: rules ?? loadShapingRules(config.shapingFile), settings: config.shaping, ...deps });
}
