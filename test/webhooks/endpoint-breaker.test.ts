/**
 * An endpoint's circuit breaker (opossum, as the Deliverer builds it): opens at the failure
 * percentage once its volume is reached, fails at once while open, lets one trial through after
 * the reset time and closes when it succeeds; and per attempt it only counts (no latency kept
 * per attempt for rolling percentiles: opossum concatenates and sorts those on every failure).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { loadPostlineConfig } from '../../shared/config.js';
import { endpointBreaker } from '../../services/webhooks/deliverer.js';
import type { PostResult } from '../../services/webhooks/webhook-client.js';

const config = loadPostlineConfig({ env: {}, overrides: { 'webhooks.breakerVolume': 10, 'webhooks.breakerErrorPercent': 50, 'webhooks.breakerResetMs': 100 } }).webhooks;
const ok = async (): Promise<PostResult> => ({ ok: true, status: 200, latencyMs: 1 });
const failing = async (): Promise<PostResult> => ({ ok: false, status: 500, latencyMs: 1, error: 'HTTP 500' });

test('an endpoint breaker opens above 50 % failures once its volume is reached, fails at once while open, and closes after a successful trial', async () => {
  const breaker = endpointBreaker(config);
  try {
    for (let i = 0; i < 4; i++) assert.equal((await breaker.fire(ok)).ok, true);
    let posted = 0;
    const counted = async (): Promise<PostResult> => (posted++, failing());
    for (let i = 0; i < 5; i++) await assert.rejects(breaker.fire(counted));
    assert.equal(breaker.opened, false, 'under the volume (9 attempts) it stays closed');
    await assert.rejects(breaker.fire(counted));
    assert.equal(breaker.opened, true, '6 failures of 10 attempts open it');
    await assert.rejects(breaker.fire(counted), /open/i);
    assert.equal(posted, 6, 'nothing is posted while it is open');
    // opossum's reset timer is unref'd: something must keep the process up while it runs.
    const keepAlive = setInterval(() => {}, 1_000);
    try {
      await once(breaker, 'halfOpen');
    } finally {
      clearInterval(keepAlive);
    }
    assert.equal((await breaker.fire(ok)).ok, true);
    assert.equal(breaker.closed, true, 'a successful trial closes it');
  } finally {
    breaker.shutdown();
  }
});

test('an endpoint breaker keeps counts, not a latency per attempt', async () => {
  const breaker = endpointBreaker(config);
  try {
    for (let i = 0; i < 2_000; i++) await breaker.fire(ok);
    const stats = breaker.stats;
    assert.equal(stats.fires, 2_000);
    assert.equal(stats.successes, 2_000);
    assert.equal(stats.latencyTimes.length, 0, 'no per-attempt latencies kept for percentiles');
  } finally {
    breaker.shutdown();
  }
});
