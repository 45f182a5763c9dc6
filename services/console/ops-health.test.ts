/**
 * OpsHealth, the pools and sites page's state, fed the events the dispatcher's own builders
 * make (shaping/ops-events.ts): pauses until their time or a `resumed`, sending-domain pauses per
 * tenant (`acme` and `acme/eu` apart), a site's limits per source address, and deferral rates
 * and breaker-open deferrals per site and source over the window only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OpsHealth } from './ops-health.js';
import type { EmailEvent } from '../../shared/contracts/email-event.js';
import type { EventInput } from '../../shared/events.js';
import { senderPausedEvent, senderResumedEvent, siteLimitsEvent, sourcePausedEvent, sourceResumedEvent } from '../dispatcher/shaping/ops-events.js';

const T0 = Date.parse('2026-12-03T19:00:10Z');
const MIN = 60_000;
let n = 0;
const at = (input: EventInput, atMs: number): EmailEvent => ({ schemaVersion: 1, eventId: `e${++n}`, at: new Date(atMs).toISOString(), stage: 'dispatcher', ...input }) as EmailEvent;
const outcome = (type: 'sent' | 'deferred' | 'bounced', atMs: number, extra: Partial<EmailEvent> = {}): EmailEvent =>
  at({ type, messageId: `m${n}`, tenant: 'acme', domain: 'gmail.com', site: 'google', source: '192.0.2.10', ...extra } as EventInput, atMs);

test('a source or pool is paused until its time or a resumed event; sending domains stay per tenant', () => {
  const h = new OpsHealth({ historyMinutes: 60 });
  h.apply(at(sourcePausedEvent({ target: '192.0.2.10', kind: 'source', reason: 'complaint-rate', rate: 0.004, sample: 1200, until: T0 + 60 * MIN }), T0));
  h.apply(at(sourcePausedEvent({ target: 'bulk', kind: 'pool', reason: 'bounce-rate', rate: 0.07, sample: 300, until: T0 + 10 * MIN }), T0));
  h.apply(at(senderPausedEvent({ tenant: 'acme', domain: 'news.acme.com', reason: 'bounce-rate', rate: 0.06, sample: 2000, until: T0 + 6 * 60 * MIN }), T0));
  h.apply(at(senderPausedEvent({ tenant: 'acme/eu', domain: 'news.acme.com', reason: 'complaint-rate', rate: 0.005, sample: 1500, until: T0 + 6 * 60 * MIN }), T0));

  const installation = h.paused(T0 + MIN, { installation: true });
  assert.deepEqual(installation.map((p) => [p.scope, p.target, p.reason, p.until]), [
    ['pool', 'bulk', 'bounce-rate', new Date(T0 + 10 * MIN).toISOString()],
    ['source', '192.0.2.10', 'complaint-rate', new Date(T0 + 60 * MIN).toISOString()],
  ]);
  assert.equal(installation[1].rate, 0.004);
  assert.equal(installation[1].sample, 1200);
  assert.deepEqual(h.paused(T0 + 11 * MIN, { installation: true }).map((p) => p.target), ['192.0.2.10'], 'the pool resumed by itself at its time');
  assert.deepEqual(h.paused(T0, { tenant: 'acme' }).map((p) => [p.tenant, p.reason]), [['acme', 'bounce-rate']]);
  assert.deepEqual(h.paused(T0, { tenant: 'acme/eu' }).map((p) => [p.tenant, p.reason]), [['acme/eu', 'complaint-rate']]);
  assert.equal(h.paused(T0, { tenant: '*' }).length, 2);

  h.apply(at(sourceResumedEvent({ target: '192.0.2.10', kind: 'source', reason: 'command' }), T0 + 2 * MIN));
  h.apply(at(senderResumedEvent({ tenant: 'acme', domain: 'news.acme.com', reason: 'command' }), T0 + 2 * MIN));
  assert.deepEqual(h.paused(T0 + 3 * MIN, { installation: true }).map((p) => p.target), ['bulk']);
  assert.equal(h.pausedOne(T0 + 3 * MIN, 'source', '192.0.2.10'), undefined);
  assert.deepEqual(h.paused(T0 + 3 * MIN, { tenant: '*' }).map((p) => p.tenant), ['acme/eu'], 'acme\'s resume leaves acme/eu\'s pause');
});

test('site limits per source address: the latest throttled or recovered, lowered ones first', () => {
  const h = new OpsHealth({ historyMinutes: 60 });
  h.apply(at(siteLimitsEvent({ source: '192.0.2.10', site: 'yahoo', to: { factor: 0.25, maxConnections: 1, perSecond: 2 }, reason: 'throttled' }), T0));
  h.apply(at(siteLimitsEvent({ source: '192.0.2.11', site: 'google', to: { factor: 0.5, maxConnections: 2, perSecond: Infinity }, reason: 'throttled' }), T0));
  h.apply(at(siteLimitsEvent({ source: '192.0.2.10', site: 'yahoo', to: { factor: 1, maxConnections: 4, perSecond: 8 }, reason: 'recovered' }), T0 + MIN));
  assert.deepEqual(h.siteLimits().map((l) => [l.site, l.source, l.factor, l.maxConnections, l.perSecond, l.reason]), [
    ['google', '192.0.2.11', 0.5, 2, undefined, 'throttled'],
    ['yahoo', '192.0.2.10', 1, 4, 8, 'recovered'],
  ]);
});

test('deferral rates and breaker-open deferrals per site and source, over the window only', () => {
  const h = new OpsHealth({ historyMinutes: 10 });
  h.apply(outcome('sent', T0 - 20 * MIN, { site: 'old-site' }));
  for (let i = 0; i < 6; i++) h.apply(outcome('sent', T0 + i * 1000));
  h.apply(outcome('deferred', T0 + 7000, { reason: 'SMTP_BREAKER_OPEN: circuit breaker for mx1.google.com:25 is open' }));
  h.apply(outcome('deferred', T0 + 8000, { reason: 'SMTP_451: try later' }));
  h.apply(outcome('bounced', T0 + 9000, { source: '192.0.2.11' }));
  h.apply(outcome('sent', T0 + 9000, { site: undefined, source: undefined, domain: 'relay.example' }));
  h.apply(at({ type: 'accepted', messageId: 'x', tenant: 'acme' } as EventInput, T0));

  const sites = h.outcomesBy('site', T0 + MIN);
  assert.deepEqual(sites.map((r) => [r.name, r.sent, r.deferred, r.bounced, r.breakerOpen]), [
    ['google', 6, 2, 1, 1],
    ['domain relay.example', 1, 0, 0, 0],
  ], 'the site outside the window is gone');
  assert.equal(sites[0].deferralRate, 2 / 9);
  assert.equal(sites[0].lastBreakerOpenAt, new Date(T0 + 7000).toISOString());
  assert.deepEqual(h.outcomesBy('source', T0 + MIN).map((r) => [r.name, r.sent, r.deferred, r.bounced]), [
    ['192.0.2.10', 6, 2, 0],
    ['192.0.2.11', 0, 0, 1],
  ]);
  assert.deepEqual(h.outcomesBy('site', T0 + 11 * MIN), [], 'all of it has left the window');
});
