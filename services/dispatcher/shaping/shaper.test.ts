import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from './clock.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadPostlineConfig } from '../../../shared/config.js';
import { ConfigError } from '../../../shared/config-loader.js';
import { TrafficShaper, ShapingDeferral, createShaper, type ShaperEvents, type ShapingSettings } from './shaper.js';
import { loadShapingRules, mergeRules } from './shaping-rules.js';
import type { WarmupPlan } from './warmup.js';

const SETTINGS: ShapingSettings = {
  maxWaitMs: 5_000,
  maxWaiting: 100,
  burstMs: 1,
  throttleFactor: 0.5,
  minFactor: 0.0625,
  throttleHoldMs: 1_000,
  cooldownMs: 60_000,
  recoverStepMs: 10_000,
  pauseWindowMs: 600_000,
  pauseMinSample: 10,
  pauseBounceRate: 0.2,
  pauseCooldownMs: 3_600_000,
  senderWindowMs: 600_000,
  senderMinSample: 4,
  senderBounceRate: 0.05,
  senderComplaintRate: 0.003, pauseComplaintRate: 0.003,
  senderCooldownMs: 60_000,
};

const rules = mergeRules(loadShapingRules(''), { sites: { slow: { maxConnections: 4, messagesPerConnection: 10, perSecond: 10 } }, domains: { 'tiny.example': { perSecond: 2 } } });

function setup(opts: { warmup?: Map<string, WarmupPlan>; start?: number } = {}) {
  const clock = new ManualClock(opts.start ?? 0);
  const shaper = new TrafficShaper({ rules, settings: SETTINGS, clock, warmup: opts.warmup });
  const events: Array<[keyof ShaperEvents, unknown]> = [];
  for (const name of ['shaping-change', 'source-paused', 'source-resumed', 'warmup-capped', 'throttle', 'deferred'] as const) shaper.on(name, (e: unknown) => events.push([name, e]));
  return { clock, shaper, events };
}

const flush = () => new Promise((r) => setImmediate(r));
const key = (site: string, domain = 'x.example', source = '127.0.0.2') => ({ source, site, domain });

/** Admits `n` messages of `k`; returns how many were admitted after each clock step. */
async function admittedOver(clock: ManualClock, shaper: TrafficShaper, k: ReturnType<typeof key>, n: number, ms: number): Promise<number> {
  let done = 0;
  for (let i = 0; i < n; i++) void shaper.admit(k, 'bulk').then(() => done++, () => {});
  for (let t = 0; t < ms; t += 10) {
    clock.advance(10);
    await flush();
  }
  return done;
}

describe('TrafficShaper', () => {
  it('paces each (source, site) by its rule, and a waiting key never holds up another', async () => {
    const { clock, shaper } = setup();
    let slow = 0;
    for (let i = 0; i < 40; i++) void shaper.admit(key('slow'), 'bulk').then(() => slow++);
    // gmail (20/s) for another source, and the same source at another site: at once.
    await shaper.admit(key('gmail', 'gmail.com', '127.0.0.3'), 'critical');
    await shaper.admit(key('outlook', 'outlook.com'), 'bulk');
    await flush();
    assert.equal(slow, 1);
    assert.equal(shaper.waiting(key('slow')), 39);
    clock.advance(1000);
    await flush();
    assert.equal(slow, 11);
  });

  it('gives a domain with a rule of its own its own bucket on top of the site\'s', async () => {
    const { clock, shaper } = setup();
    assert.equal(await admittedOver(clock, shaper, key('slow', 'tiny.example'), 10, 2000), 1 + 4);
  });

  it('shapes a shard key (`hot#1`) with its share of the site\'s rule, and of a domain\'s own rates', async () => {
    const sharded = mergeRules(loadShapingRules(''), { sites: { hot: { maxConnections: 5, messagesPerConnection: 10, perSecond: 10, shards: 2 } }, domains: { 'tiny.example': { perSecond: 2 } } });
    const clock = new ManualClock(0);
    const shaper = new TrafficShaper({ rules: sharded, settings: SETTINGS, clock });
    assert.deepEqual(shaper.limits(key('hot#0')), { maxConnections: 3, maxMessagesPerConnection: 10 });
    assert.deepEqual(shaper.limits(key('hot#1')), { maxConnections: 2, maxMessagesPerConnection: 10 });
    assert.deepEqual(shaper.limits(key('hot')), { maxConnections: 5, maxMessagesPerConnection: 10 }, 'an unsharded key: the whole rule');
    assert.deepEqual(shaper.current().map((c) => [c.site, c.perSecond]), [['hot#0', 5], ['hot#1', 5], ['hot', 10]]);
    // tiny.example's 2/s, shared by the 2 shards: 1/s under one of them (2/s unsharded: 1 + 4 in 2 s).
    assert.equal(await admittedOver(clock, shaper, key('hot#0', 'tiny.example'), 10, 2000), 1 + 2);
    shaper.close();
  });

  it('slows a (source, site) down on a throttling reply, with an event, then recovers step by step', async () => {
    const { clock, shaper, events } = setup();
    assert.deepEqual(shaper.limits(key('slow')), { maxConnections: 4, maxMessagesPerConnection: 10 });
    shaper.observe(key('slow'), { code: 250, text: 'OK' });
    shaper.observe(key('slow'), { code: 451, enhanced: '4.7.1', text: 'Greylisted, please come back later' });
    assert.equal(events.length, 0, 'a 250 and greylisting are not throttling');
    shaper.observe(key('slow'), { code: 421, enhanced: '4.7.0', text: 'Try again later, closing connection.' });
    shaper.observe(key('slow'), { code: 421, enhanced: '4.7.0', text: 'Try again later, closing connection.' });
    const changes = () => events.filter(([n]) => n === 'shaping-change').map(([, e]) => e as ShaperEvents['shaping-change'][0]);
    assert.equal(changes().length, 1, 'two replies within throttleHoldMs are one signal');
    assert.deepEqual(changes()[0], {
      key: '127.0.0.2|slow',
      source: '127.0.0.2',
      site: 'slow',
      from: { perSecond: 10, maxConnections: 4, factor: 1 },
      to: { perSecond: 5, maxConnections: 2, factor: 0.5 },
      reason: 'throttled (try-again-later)',
    });
    assert.deepEqual(shaper.limits(key('slow')), { maxConnections: 2, maxMessagesPerConnection: 10 });
    assert.equal(events.filter(([n]) => n === 'throttle').length, 2);
    // Other keys are untouched.
    assert.equal(shaper.limits(key('slow', 'x.example', '127.0.0.3')).maxConnections, 4);
    // Half the rate while lowered.
    assert.equal(await admittedOver(clock, shaper, key('slow'), 100, 2000), 1 + 10);
    clock.advance(60_000 - 2000 - 1);
    assert.equal(changes().length, 1);
    clock.advance(1);
    assert.equal(changes().length, 2);
    assert.deepEqual(changes()[1].to, { perSecond: 10, maxConnections: 4, factor: 1 });
    assert.equal(changes()[1].reason, 'recovered');
    shaper.close();
  });

  it('recovers from a deep cut one step per recoverStepMs', () => {
    const { clock, shaper, events } = setup();
    for (let i = 0; i < 3; i++) {
      shaper.observe(key('slow'), { code: 421, text: '4.7.28 unusual rate' });
      clock.advance(1_000);
    }
    const factors = () => events.filter(([n]) => n === 'shaping-change').map(([, e]) => (e as ShaperEvents['shaping-change'][0]).to.factor);
    assert.deepEqual(factors(), [0.5, 0.25, 0.125]);
    clock.advance(60_000 - 1_000 + 30_000);
    assert.deepEqual(factors(), [0.5, 0.25, 0.125, 0.25, 0.5, 1]);
  });

  it('defers (retriable, SHAPING_DEFERRED) what would wait too long, with an event', async () => {
    const { shaper, events } = setup();
    const rejected: unknown[] = [];
    for (let i = 0; i < 60; i++) shaper.admit(key('slow'), 'bulk').catch((e: unknown) => void (e instanceof ShapingDeferral && rejected.push(e)));
    await flush();
    // 1 at once + 50 within 5 s at 10/s; the rest would wait longer.
    assert.equal(rejected.length, 60 - 51);
    assert.ok(rejected.every((e) => e instanceof ShapingDeferral && e.code === 'SHAPING_DEFERRED' && e.retriable));
    assert.equal(events.filter(([n]) => n === 'deferred').length, 9);
    shaper.close();
  });

  it('takes an address out at its warm-up cap, with an event', () => {
    const start = Date.parse('2026-12-01T08:00:00Z');
    const { shaper, events } = setup({ start, warmup: new Map([['127.0.0.2', { start: '2026-12-01', schedule: [[1, 3]] } satisfies WarmupPlan]]) });
    for (let i = 0; i < 3; i++) {
      assert.ok(shaper.sourceAvailable('127.0.0.2'));
      shaper.recordSent('127.0.0.2');
    }
    assert.equal(shaper.sourceAvailable('127.0.0.2'), false);
    assert.ok(shaper.sourceAvailable('127.0.0.3'));
    assert.deepEqual(events.filter(([n]) => n === 'warmup-capped').map(([, e]) => e), [{ source: '127.0.0.2', day: 1, cap: 3, sent: 3 }]);
    assert.deepEqual(shaper.warmupUsage(), [{ source: '127.0.0.2', day: 1, cap: 3, sent: 3 }]);
  });

  it('pauses an address (and its pool) on recipient bounces, resumes by command or after the cool-down', () => {
    const { clock, shaper, events } = setup();
    for (let i = 0; i < 7; i++) shaper.recordSent('127.0.0.2', 'bulk');
    for (let i = 0; i < 20; i++) shaper.recordBounce('127.0.0.2', false, 'bulk');
    assert.ok(shaper.sourceAvailable('127.0.0.2', 'bulk'), 'other bounces do not pause');
    for (let i = 0; i < 10; i++) shaper.recordBounce('127.0.0.2', true, 'bulk');
    assert.equal(shaper.sourceAvailable('127.0.0.2'), false);
    assert.equal(shaper.sourceAvailable('127.0.0.3', 'bulk'), false, 'the pool is paused too');
    assert.ok(shaper.sourceAvailable('127.0.0.3', 'transactional'));
    const paused = events.filter(([n]) => n === 'source-paused').map(([, e]) => e as ShaperEvents['source-paused'][0]);
    assert.deepEqual(paused.map((p) => [p.target, p.kind]), [['127.0.0.2', 'source'], ['bulk', 'pool']]);
    assert.ok(paused[0].rate > 0.2 && paused[0].sample >= 10);
    assert.deepEqual(shaper.paused().map((p) => p.target).sort(), ['127.0.0.2', 'bulk']);

    assert.equal(shaper.resume('127.0.0.2'), true);
    assert.equal(shaper.resume('127.0.0.2'), false);
    assert.ok(shaper.sourceAvailable('127.0.0.2'));
    assert.equal(shaper.sourceAvailable('127.0.0.2', 'bulk'), false);
    clock.advance(3_600_000);
    assert.ok(shaper.sourceAvailable('127.0.0.2', 'bulk'));
    assert.deepEqual(events.filter(([n]) => n === 'source-resumed').map(([, e]) => e), [
      { target: '127.0.0.2', kind: 'source', reason: 'command' },
      { target: 'bulk', kind: 'pool', reason: 'cooldown' },
    ]);
  });

  it('rejects waiting messages (retriable) on close', async () => {
    const { shaper } = setup();
    await shaper.admit(key('slow'), 'bulk');
    const waiting = shaper.admit(key('slow'), 'bulk');
    shaper.close();
    await assert.rejects(waiting, (e: Error & { retriable?: boolean }) => e.retriable === true);
    await assert.rejects(shaper.admit(key('slow'), 'bulk'), /closed/);
  });

  it('is built from the dispatcher config: POSTLINE_DISPATCHER_SHAPING_FILE over the shipped defaults', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'postline-shaping-'));
    try {
      const file = path.join(dir, 'shaping.yaml');
      fs.writeFileSync(file, 'sites:\n  gmail: { maxConnections: 2 }\n');
      const config = loadPostlineConfig({ env: { POSTLINE_DISPATCHER_SHAPING_FILE: file, POSTLINE_DISPATCHER_SHAPING_MAX_WAITING: '3' } });
      assert.equal(config.dispatcher.shaping.maxWaiting, 3);
      const shaper = createShaper(config.dispatcher);
      assert.deepEqual(shaper.limits(key('gmail')), { maxConnections: 2, maxMessagesPerConnection: 50 });
      shaper.close();
      fs.writeFileSync(file, 'sites:\n  gmail: { maxConnections: 0 }\n');
      assert.throws(() => createShaper(config.dispatcher), (e: unknown) => e instanceof ConfigError && /sites\.gmail\.maxConnections/.test(e.message));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
