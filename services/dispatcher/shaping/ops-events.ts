/**
 * Pauses and back-off as operational events on email.events, shared by every dispatcher
 * replica (issues 12 and 13):
 * - out: the shaper's transitions become events — `paused` / `resumed` (scope source, pool or
 *   sender) and `throttled` / `recovered` (scope site) — with messageId '' and tenant '' (a
 *   sending domain's pause carries its tenant, so it is that tenant's own; tenant reads of events
 *   never show another tenant's ops events).
 * - in: every replica tails email.events (sent-tail.ts) and applies the `paused` / `resumed`
 *   events it reads (its own too: a no-op), so a pause, or a resume by API on any replica, holds
 *   on all of them; and it feeds each sending domain's outcomes (`sent`, `bounced`,
 *   `complained` of every replica) to the shaper, whose rates are then over all of its traffic.
 * Pure mapping functions, and thin wiring.
 */
import type { Logger } from 'pino';
import type { EventInput } from '../../../shared/events.js';
import { isRecipientClassBounce } from './auto-pause.js';
import type { EffectiveLimits, PauseNotice, SenderOutcome, TrafficShaper } from './shaper.js';

type Scope = 'source' | 'pool' | 'sender';

const iso = (ms: number): string => new Date(ms).toISOString();

/** The `paused` event of a source address or pool. */
export function sourcePausedEvent(e: { target: string; kind: 'source' | 'pool'; reason: string; rate: number; sample: number; until: number }): EventInput {
  return { type: 'paused', messageId: '', tenant: '', reason: e.reason, ...(e.kind === 'source' ? { source: e.target } : { pool: e.target }), ops: { scope: e.kind, target: e.target, rate: e.rate, sample: e.sample, until: iso(e.until) } };
}

export function sourceResumedEvent(e: { target: string; kind: 'source' | 'pool'; reason: string }): EventInput {
  return { type: 'resumed', messageId: '', tenant: '', reason: e.reason, ...(e.kind === 'source' ? { source: e.target } : { pool: e.target }), ops: { scope: e.kind, target: e.target } };
}

export function senderPausedEvent(e: { tenant: string; domain: string; reason: string; rate: number; sample: number; until: number }): EventInput {
  return { type: 'paused', messageId: '', tenant: e.tenant, reason: e.reason, fromDomain: e.domain, ops: { scope: 'sender', target: e.domain, rate: e.rate, sample: e.sample, until: iso(e.until) } };
}

export function senderResumedEvent(e: { tenant: string; domain: string; reason: string }): EventInput {
  return { type: 'resumed', messageId: '', tenant: e.tenant, reason: e.reason, fromDomain: e.domain, ops: { scope: 'sender', target: e.domain } };
}

/** `throttled` (limits lowered by a throttling reply) or `recovered` (a step back towards the rule). */
export function siteLimitsEvent(e: { source: string; site: string; to: EffectiveLimits; reason: string }): EventInput {
  const recovered = e.reason === 'recovered';
  return {
    type: recovered ? 'recovered' : 'throttled',
    messageId: '',
    tenant: '',
    reason: e.reason,
    source: e.source,
    site: e.site,
    ops: { scope: 'site', target: e.site, factor: e.to.factor, maxConnections: e.to.maxConnections, ...(Number.isFinite(e.to.perSecond) ? { perSecond: e.to.perSecond } : {}) },
  };
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** A `paused` / `resumed` event read from the tail, as the shaper applies it (undefined: not one). Lenient: fields are checked, not the whole contract. */
export function pauseNoticeOf(event: Record<string, unknown>): PauseNotice | undefined {
  if (event.type !== 'paused' && event.type !== 'resumed') return undefined;
  const ops = event.ops as Record<string, unknown> | undefined;
  const scope = str(ops?.scope) as Scope | undefined;
  const target = str(ops?.target);
  if (!target || (scope !== 'source' && scope !== 'pool' && scope !== 'sender')) return undefined;
  const tenant = scope === 'sender' ? str(event.tenant) ?? '' : undefined;
  if (event.type === 'resumed') return { paused: false, scope, target, ...(tenant !== undefined ? { tenant } : {}) };
  const until = Date.parse(str(ops?.until) ?? '');
  if (!Number.isFinite(until)) return undefined;
  return { paused: true, scope, target, until, ...(tenant !== undefined ? { tenant } : {}) };
}

/** What one event says about a sending domain's rates (undefined: nothing). Only recipient-class bounces count as hard bounces. */
export function senderOutcomeOf(event: Record<string, unknown>): { tenant: string; domain: string; outcome: SenderOutcome } | undefined {
  const tenant = str(event.tenant);
  const domain = str(event.fromDomain);
  if (tenant === undefined || !domain || event.messageId === '') return undefined;
  if (event.type === 'sent') return { tenant, domain, outcome: 'sent' };
  if (event.type === 'complained') return { tenant, domain, outcome: 'complaint' };
  if (event.type !== 'bounced') return undefined;
  const cls = str(event.bounceClass);
  const smtp = (event.smtp ?? {}) as Record<string, unknown>;
  // The event's class (the bounce rule table) when it has one; else the reply, as auto-pause reads it.
  const recipient = cls !== undefined ? cls === 'recipient' : isRecipientClassBounce(typeof smtp.code === 'number' ? smtp.code : undefined, str(smtp.enhanced), str(smtp.message));
  return { tenant, domain, outcome: recipient ? 'recipient-bounce' : 'bounced' };
}

/**
 * What one event says about a source address's complaint rate: a `sent` through it, or a
 * `complained` whose report named it (the inbound service sets `source` from ARF's Source-IP).
 */
export function sourceFeedbackOf(event: Record<string, unknown>): { source: string; outcome: 'sent' | 'complaint' } | undefined {
  const source = str(event.source);
  if (!source || event.messageId === '') return undefined;
  if (event.type === 'sent') return { source, outcome: 'sent' };
  if (event.type === 'complained') return { source, outcome: 'complaint' };
  return undefined;
}

/** Applies one event of the tail to the shaper: pause notices, sending-domain and source-address outcomes. */
export function applyTailEvent(shaper: TrafficShaper, event: Record<string, unknown>): void {
  const notice = pauseNoticeOf(event);
  if (notice) return shaper.applyNotice(notice);
  const o = senderOutcomeOf(event);
  if (o) shaper.recordSender(o.tenant, o.domain, o.outcome);
  const f = sourceFeedbackOf(event);
  if (f) shaper.recordSourceFeedback(f.source, f.outcome);
}

/** Publishes the shaper's transitions as events (failures are logged: the transition holds here regardless). */
export function publishShaperEvents(shaper: TrafficShaper, publish: (e: EventInput) => Promise<unknown>, logger: Logger): void {
  const send = (e: EventInput): void => {
    publish(e).catch((err: unknown) => logger.warn({ err, type: e.type, ops: e.ops }, 'operational event not published; other replicas do not learn of it'));
  };
  shaper.on('source-paused', (e) => send(sourcePausedEvent(e)));
  shaper.on('source-resumed', (e) => send(sourceResumedEvent(e)));
  shaper.on('sender-paused', (e) => send(senderPausedEvent(e)));
  shaper.on('sender-resumed', (e) => send(senderResumedEvent(e)));
  shaper.on('shaping-change', (e) => send(siteLimitsEvent(e)));
}
