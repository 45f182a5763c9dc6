import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { EmailEventContract } from '../../../shared/contracts/email-event.js';
import { ManualClock } from './clock.js';
import { TrafficShaper, type ShapingSettings } from './shaper.js';
import { loadShapingRules } from './shaping-rules.js';
import { registerSourceRoutes } from './source-routes.js';
import { applyTailEvent, pauseNoticeOf, publishShaperEvents, senderOutcomeOf, sourcePausedEvent } from './ops-events.js';
import type { EventInput } from '../../../shared/events.js';
import pino from 'pino';

const SETTINGS = {
  maxWaitMs: 1_000, maxWaiting: 10, burstMs: 1, throttleFactor: 0.5, minFactor: 0.1, throttleHoldMs: 0, cooldownMs: 1, recoverStepMs: 1,
  pauseWindowMs: 600_000, pauseMinSample: 2, pauseBounceRate: 0.5, pauseCooldownMs: 60_000,
  senderWindowMs: 600_000, senderMinSample: 100, senderBounceRate: 0.05, senderComplaintRate: 0.003, pauseComplaintRate: 0.003, senderCooldownMs: 3_600_000,
} satisfies ShapingSettings;

const T0 = Date.parse('2026-12-03T10:00:00Z');

/** A shaper and the events it publishes, as a full event of the contract (as the tail would read it). */
function replica(clock = new ManualClock(T0)) {
  const pools = new Map([['127.0.0.2', ['bulk']], ['127.0.0.3', ['bulk', 'news']]]);
  const shaper = new TrafficShaper({ rules: loadShapingRules(''), settings: SETTINGS, clock, poolsOf: (s) => pools.get(s) });
  const published: Record<string, unknown>[] = [];
  publishShaperEvents(shaper, async (e: EventInput) => {
    const full = { schemaVersion: 1, eventId: `e${published.length}`, at: new Date(clock.now()).toISOString(), stage: 'dispatcher', ...e };
    EmailEventContract.decode(Buffer.from(JSON.stringify(full)));
    published.push(full);
  }, pino({ level: 'silent' }));
  return { shaper, published, clock };
}

const event = (type: string, tenant: string, fromDomain: string, more: Record<string, unknown> = {}): Record<string, unknown> => ({ type, messageId: 'm', tenant, fromDomain, at: new Date(T0).toISOString(), ...more });

describe('operational events', () => {
  it('a source paused on one replica is paused on another that reads its event; a resume there holds on both', async () => {
    const a = replica();
    const b = replica();
    a.shaper.recordBounce('127.0.0.2', true, 'bulk');
    a.shaper.recordBounce('127.0.0.2', true, 'bulk');
    await Promise.resolve();
    assert.deepEqual(a.published.map((e) => [e.type, e.tenant, e.messageId, (e.ops as { scope: string }).scope]), [['paused', '', '', 'source'], ['paused', '', '', 'pool']]);
    assert.equal(b.shaper.sourceAvailable('127.0.0.2'), true, 'b counted nothing itself');
    for (const e of a.published) applyTailEvent(b.shaper, e);
    assert.equal(b.shaper.sourceAvailable('127.0.0.2'), false);
    assert.equal(b.shaper.sourceAvailable('127.0.0.3', 'bulk'), false, 'the pool too');
    assert.equal(b.published.length, 0, 'applying announces nothing again');
    // The operator resumes on b: its event reaches a.
    assert.ok(b.shaper.resume('127.0.0.2'));
    await Promise.resolve();
    assert.deepEqual(b.published.map((e) => e.type), ['resumed']);
    applyTailEvent(a.shaper, b.published[0]);
    assert.equal(a.shaper.sourceAvailable('127.0.0.2'), true);
    for (const r of [a, b]) r.shaper.close();
  });

  it('a site\'s back-off is a throttled event, its recovery a recovered event (tenant \'\', the limits in force)', async () => {
    const r = replica();
    const key = { source: '127.0.0.2', site: 'gmail', domain: 'gmail.com' };
    r.shaper.limits(key);
    r.shaper.observe(key, { code: 421, enhanced: '4.7.28', text: 'unusual rate of unsolicited mail' });
    await Promise.resolve();
    const [throttled] = r.published;
    assert.deepEqual(
      { type: throttled.type, tenant: throttled.tenant, messageId: throttled.messageId, source: throttled.source, site: throttled.site, ops: throttled.ops },
      { type: 'throttled', tenant: '', messageId: '', source: '127.0.0.2', site: 'gmail', ops: { scope: 'site', target: 'gmail', factor: 0.5, maxConnections: 2, perSecond: 10 } },
    );
    r.clock.advance(10);
    await Promise.resolve();
    assert.deepEqual(r.published.map((e) => e.type), ['throttled', 'recovered']);
    r.shaper.close();
  });

  it('a paused event whose cool-down has passed is not applied (start-up replay of the day)', () => {
    const b = replica();
    const notice = pauseNoticeOf({ ...sourcePausedEvent({ target: '127.0.0.9', kind: 'source', reason: 'bounce-rate', rate: 1, sample: 5, until: T0 - 1 }) } as Record<string, unknown>);
    assert.ok(notice);
    b.shaper.applyNotice(notice);
    assert.equal(b.shaper.sourceAvailable('127.0.0.9'), true);
    b.shaper.close();
  });

  it('a sending domain pauses on its complaint rate over all replicas\' events; only its own tenant\'s key', async () => {
    const r = replica();
    for (let i = 0; i < 400; i++) applyTailEvent(r.shaper, event('sent', 'acme', 'news.example'));
    applyTailEvent(r.shaper, event('complained', 'acme', 'news.example', { category: 'abuse' }));
    assert.equal(r.shaper.senderPaused('acme', 'news.example'), false, '1 in 401 is 0.25 %');
    applyTailEvent(r.shaper, event('complained', 'acme', 'News.Example'));
    assert.equal(r.shaper.senderPaused('acme', 'news.example'), true, '2 in 402 is 0.5 %');
    assert.equal(r.shaper.senderPaused('acme/eu', 'news.example'), false, 'another tenant with the same domain');
    await Promise.resolve();
    const [paused] = r.published;
    assert.equal(paused.type, 'paused');
    assert.equal(paused.tenant, 'acme', 'the tenant\'s own event');
    assert.equal(paused.reason, 'complaint-rate');
    assert.deepEqual({ ...(paused.ops as object), rate: undefined }, { scope: 'sender', target: 'news.example', rate: undefined, sample: 402, until: '2026-12-03T11:00:00.000Z' });
    r.clock.advance(3_600_000);
    assert.equal(r.shaper.senderPaused('acme', 'news.example'), false, 'resumed after the cool-down');
    await Promise.resolve();
    assert.deepEqual(r.published.map((e) => [e.type, e.reason]), [['paused', 'complaint-rate'], ['resumed', 'cooldown']]);
    r.shaper.close();
  });

  it('complaints naming a source address (ARF Source-IP) pause it and its pools on their complaint rate over every replica\'s sends', async () => {
    const r = replica();
    const sent = (source: string) => applyTailEvent(r.shaper, event('sent', 'acme', 'a.example', { source }));
    const complaint = (source: string) => applyTailEvent(r.shaper, event('complained', 'acme', 'a.example', { source, via: 'arf', category: 'abuse' }));
    for (let i = 0; i < 300; i++) sent('127.0.0.2');
    for (let i = 0; i < 100; i++) sent('127.0.0.3');
    complaint('127.0.0.2');
    await Promise.resolve();
    // 127.0.0.2: 1 in 301 (0.33 %) is over 0.3 %; its pool bulk: 1 in 401 (0.25 %) is not.
    const pauses = () => r.published.filter((e) => e.type === 'paused' && (e.ops as { scope: string }).scope !== 'sender').map((e) => [e.reason, (e.ops as { scope: string }).scope, (e.ops as { target: string }).target]);
    assert.deepEqual(pauses(), [['complaint-rate', 'source', '127.0.0.2']]);
    assert.equal(r.shaper.sourceAvailable('127.0.0.2'), false);
    assert.equal(r.shaper.sourceAvailable('127.0.0.3', 'bulk'), true);
    complaint('127.0.0.3');
    await Promise.resolve();
    // 127.0.0.3: 1 in 101; bulk: 2 in 402 (0.5 %); news (only 127.0.0.3): 1 in 101.
    assert.deepEqual(pauses().slice(1), [['complaint-rate', 'source', '127.0.0.3'], ['complaint-rate', 'pool', 'bulk'], ['complaint-rate', 'pool', 'news']]);
    assert.equal(r.shaper.sourceAvailable('127.0.0.9', 'bulk'), false, 'any address of a paused pool');
    // An address of no configured pool is not ours: its complaints are not counted.
    for (let i = 0; i < 200; i++) sent('10.9.9.9');
    complaint('10.9.9.9');
    assert.deepEqual(r.shaper.paused().map((p) => p.target).sort(), ['127.0.0.2', '127.0.0.3', 'bulk', 'news']);
    // Another replica applies the pauses it reads; the cool-down resumes them here.
    const b = replica();
    for (const e of r.published) applyTailEvent(b.shaper, e);
    assert.equal(b.shaper.sourceAvailable('127.0.0.2'), false);
    r.clock.advance(SETTINGS.pauseCooldownMs);
    await Promise.resolve();
    assert.deepEqual(r.published.filter((e) => e.type === 'resumed' && (e.ops as { scope: string }).scope !== 'sender').map((e) => (e.ops as { target: string }).target).sort(), ['127.0.0.2', '127.0.0.3', 'bulk', 'news']);
    assert.equal(r.shaper.sourceAvailable('127.0.0.2', 'bulk'), true);
    // A command resumes an address paused by its complaint rate.
    complaint('127.0.0.2');
    for (let i = 0; i < 2; i++) complaint('127.0.0.2');
    assert.equal(r.shaper.sourceAvailable('127.0.0.2'), true, 'a fresh window: 3 complaints and no sends is under the minimum sample');
    for (const x of [r, b]) x.shaper.close();
  });

  it('hard bounces pause a sending domain only when recipient-class, with a minimum sample', () => {
    const r = replica();
    for (let i = 0; i < 90; i++) applyTailEvent(r.shaper, event('sent', 'acme', 'a.example'));
    for (let i = 0; i < 9; i++) applyTailEvent(r.shaper, event('bounced', 'acme', 'a.example', { bounceClass: 'infrastructure', smtp: { code: 554, enhanced: '5.7.1' } }));
    applyTailEvent(r.shaper, event('bounced', 'acme', 'a.example', { bounceClass: 'recipient' }));
    assert.equal(r.shaper.senderPaused('acme', 'a.example'), false, '1 recipient-class in 100');
    for (let i = 0; i < 5; i++) applyTailEvent(r.shaper, event('bounced', 'acme', 'a.example', { smtp: { code: 550, enhanced: '5.1.1', message: 'user unknown' } }));
    assert.equal(r.shaper.senderPaused('acme', 'a.example'), true, '6 in 105');
    r.shaper.close();
  });

  it('reads events leniently: ops events, events without a sending domain and engagement say nothing about rates', () => {
    assert.equal(senderOutcomeOf({ type: 'sent', tenant: 'acme' }), undefined);
    assert.equal(senderOutcomeOf({ type: 'opened', tenant: 'acme', fromDomain: 'x.example' }), undefined);
    assert.equal(senderOutcomeOf({ type: 'paused', messageId: '', tenant: 'acme', fromDomain: 'x.example' }), undefined);
    assert.equal(pauseNoticeOf({ type: 'paused', ops: { scope: 'site', target: 'gmail.com' } }), undefined);
    assert.equal(pauseNoticeOf({ type: 'paused', ops: { scope: 'source', target: '1.2.3.4' } }), undefined, 'no until');
  });

  it('GET /v1/senders lists a tenant\'s paused domains; resume is per tenant (acme and acme/eu)', async () => {
    const r = replica();
    const until = T0 + 60_000;
    r.shaper.applyNotice({ paused: true, scope: 'sender', tenant: 'acme', target: 'news.example', until });
    r.shaper.applyNotice({ paused: true, scope: 'sender', tenant: 'acme/eu', target: 'news.example', until });
    const app = Fastify();
    registerSourceRoutes(app, r.shaper);
    const list = await app.inject({ method: 'GET', url: '/v1/senders?tenant=acme' });
    assert.deepEqual(list.json(), { paused: [{ tenant: 'acme', domain: 'news.example', until: '2026-12-03T10:01:00.000Z' }] });
    assert.equal((await app.inject({ method: 'GET', url: '/v1/senders' })).json().paused.length, 2);
    const resumed = await app.inject({ method: 'POST', url: '/v1/senders/acme%2Feu/news.example/resume' });
    assert.equal(resumed.statusCode, 200);
    assert.deepEqual(resumed.json(), { resumed: 'news.example', tenant: 'acme/eu', kind: 'sender' });
    assert.equal(r.shaper.senderPaused('acme/eu', 'news.example'), false);
    assert.equal(r.shaper.senderPaused('acme', 'news.example'), true, 'acme\'s own pause holds');
    assert.equal((await app.inject({ method: 'POST', url: '/v1/senders/acme%2Feu/news.example/resume' })).statusCode, 404);
    await Promise.resolve();
    assert.deepEqual(r.published.map((e) => [e.type, e.tenant, e.fromDomain]), [['resumed', 'acme/eu', 'news.example']]);
    await app.close();
    r.shaper.close();
  });
});
