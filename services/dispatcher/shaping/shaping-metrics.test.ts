import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { ManualClock } from './clock.js';
import { TrafficShaper, type ShapingSettings } from './shaper.js';
import { instrumentShaper } from './shaping-metrics.js';
import { loadShapingRules } from './shaping-rules.js';

const SETTINGS: ShapingSettings = {
  maxWaitMs: 1_000,
  maxWaiting: 2,
  burstMs: 1,
  throttleFactor: 0.5,
  minFactor: 0.0625,
  throttleHoldMs: 1_000,
  cooldownMs: 60_000,
  recoverStepMs: 10_000,
  pauseWindowMs: 600_000,
  pauseMinSample: 4,
  pauseBounceRate: 0.5,
  pauseCooldownMs: 60_000,
  senderWindowMs: 600_000,
  senderMinSample: 4,
  senderBounceRate: 0.05,
  senderComplaintRate: 0.003, pauseComplaintRate: 0.003,
  senderCooldownMs: 60_000,
};

const value = (text: string, series: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe('shaping metrics', () => {
  it('export limits per (source, site) with bounded site labels, waits, deferrals, throttles, warm-up and paused addresses', async () => {
    const clock = new ManualClock(Date.parse('2026-12-01T08:00:00Z'));
    const shaper = new TrafficShaper({ rules: loadShapingRules(''), settings: SETTINGS, clock, warmup: new Map([['127.0.0.2', { start: '2026-12-01', schedule: [[1, 50]] }]]) });
    const registry = new Registry();
    instrumentShaper(registry, shaper);

    await shaper.admit({ source: '127.0.0.2', site: 'gmail', domain: 'gmail.com' }, 'critical');
    await shaper.admit({ source: '127.0.0.2', site: 'mx.example.net', domain: 'example.net' }, 'bulk');
    await shaper.admit({ source: '127.0.0.2', site: 'mx.example.org', domain: 'example.org' }, 'bulk');
    shaper.observe({ source: '127.0.0.2', site: 'mx.example.org', domain: 'example.org' }, { code: 421, enhanced: '4.7.0', text: 'Too many connections' });
    for (let i = 0; i < 5; i++) shaper.admit({ source: '127.0.0.2', site: 'gmail', domain: 'gmail.com' }, 'bulk').catch(() => {});
    shaper.recordSent('127.0.0.2');
    for (let i = 0; i < 4; i++) shaper.recordBounce('127.0.0.3', true);

    const text = await registry.metrics();
    assert.equal(value(text, 'postline_shaping_rate_limit{source="127.0.0.2",site="gmail"}'), 20);
    assert.equal(value(text, 'postline_shaping_connection_limit{source="127.0.0.2",site="gmail"}'), 5);
    // Two sites without a rule of their own are one label; the gauge shows the most restricted.
    assert.equal(value(text, 'postline_shaping_rate_limit{source="127.0.0.2",site="other"}'), 50);
    assert.equal(value(text, 'postline_shaping_factor{source="127.0.0.2",site="other"}'), 0.5);
    assert.ok(!text.includes('mx.example'), 'no unbounded site label');
    assert.equal(value(text, 'postline_shaping_wait_seconds_count{site="gmail",priority="critical"}'), 1);
    assert.equal(value(text, 'postline_shaping_deferrals_total{site="gmail",priority="bulk",reason="queue-full"}'), 3);
    assert.equal(value(text, 'postline_shaping_throttles_total{site="other",reason="rate-limit"}'), 1);
    assert.equal(value(text, 'postline_shaping_changes_total{site="other",reason="throttled"}'), 1);
    assert.equal(value(text, 'postline_warmup_sent{source="127.0.0.2"}'), 1);
    assert.equal(value(text, 'postline_warmup_cap{source="127.0.0.2"}'), 50);
    assert.equal(value(text, 'postline_source_paused{source="127.0.0.3",kind="source"}'), 1);
    assert.equal(value(text, 'postline_source_pauses_total{kind="source"}'), 1);

    shaper.resume('127.0.0.3');
    assert.equal(value(await registry.metrics(), 'postline_source_paused{source="127.0.0.3",kind="source"}'), 0);
    shaper.close();
  });

  it('export paused sending domains by tenant and domain, and pauses by the rate that passed', async () => {
    const shaper = new TrafficShaper({ rules: loadShapingRules(''), settings: SETTINGS, clock: new ManualClock(Date.parse('2026-12-01T08:00:00Z')) });
    const registry = new Registry();
    instrumentShaper(registry, shaper);
    for (let i = 0; i < 4; i++) shaper.recordSender('acme/eu', 'news.example', 'sent');
    shaper.recordSender('acme/eu', 'news.example', 'complaint');
    shaper.recordSender('acme', 'other.example', 'sent');
    const text = await registry.metrics();
    assert.equal(value(text, 'postline_sender_paused{tenant="acme/eu",domain="news.example"}'), 1);
    assert.ok(!text.includes('other.example'), 'only domains that were paused are labelled');
    assert.equal(value(text, 'postline_sender_pauses_total{reason="complaint-rate"}'), 1);
    shaper.resumeSender('acme/eu', 'news.example');
    assert.equal(value(await registry.metrics(), 'postline_sender_paused{tenant="acme/eu",domain="news.example"}'), 0);
    shaper.close();
  });
});
