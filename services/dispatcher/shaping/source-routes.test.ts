import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { ManualClock } from './clock.js';
import { TrafficShaper, type ShapingSettings } from './shaper.js';
import { loadShapingRules } from './shaping-rules.js';
import { registerSourceRoutes } from './source-routes.js';

const SETTINGS = { maxWaitMs: 1_000, maxWaiting: 10, burstMs: 1, throttleFactor: 0.5, minFactor: 0.1, throttleHoldMs: 0, cooldownMs: 1, recoverStepMs: 1, pauseWindowMs: 600_000, pauseMinSample: 2, pauseBounceRate: 0.5, pauseCooldownMs: 60_000, senderWindowMs: 600_000, senderMinSample: 4, senderBounceRate: 0.05, senderComplaintRate: 0.003, pauseComplaintRate: 0.003, senderCooldownMs: 60_000 } satisfies ShapingSettings;

describe('source routes', () => {
  it('list paused addresses and resume one (404 when it is not paused)', async () => {
    const clock = new ManualClock(Date.parse('2026-12-03T10:00:00Z'));
    const shaper = new TrafficShaper({ rules: loadShapingRules(''), settings: SETTINGS, clock, warmup: new Map([['127.0.0.4', { start: '2026-12-01', schedule: [[1, 10], [3, 30]] }]]) });
    const app = Fastify();
    registerSourceRoutes(app, shaper);
    shaper.recordBounce('127.0.0.2', true, 'bulk');
    shaper.recordBounce('127.0.0.2', true, 'bulk');
    assert.equal(shaper.sourceAvailable('127.0.0.2'), false);

    const list = await app.inject({ method: 'GET', url: '/v1/sources' });
    assert.equal(list.statusCode, 200);
    assert.deepEqual(list.json(), {
      paused: [
        { target: '127.0.0.2', kind: 'source', until: '2026-12-03T10:01:00.000Z' },
        { target: 'bulk', kind: 'pool', until: '2026-12-03T10:01:00.000Z' },
      ],
      warmup: [{ source: '127.0.0.4', day: 3, cap: 30, sent: 0 }],
    });

    const resumed = await app.inject({ method: 'POST', url: '/v1/sources/127.0.0.2/resume' });
    assert.equal(resumed.statusCode, 200);
    assert.deepEqual(resumed.json(), { resumed: '127.0.0.2', kind: 'source' });
    assert.ok(shaper.sourceAvailable('127.0.0.2'));
    const again = await app.inject({ method: 'POST', url: '/v1/sources/127.0.0.2/resume' });
    assert.equal(again.statusCode, 404);
    assert.equal(again.json().error, 'NOT_PAUSED');
    assert.equal((await app.inject({ method: 'POST', url: '/v1/pools/bulk/resume' })).statusCode, 200);
    assert.ok(shaper.sourceAvailable('127.0.0.2', 'bulk'));
    await app.close();
    shaper.close();
  });
});
