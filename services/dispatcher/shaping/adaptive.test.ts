import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { initialAdaptive, nextTickAt, onThrottle, onTick, type AdaptiveOptions, type AdaptiveState } from './adaptive.js';

const O: AdaptiveOptions = { throttleFactor: 0.5, minFactor: 0.125, holdMs: 1000, cooldownMs: 60_000, recoverStepMs: 10_000 };

describe('adaptive back-off', () => {
  it('halves on a throttling reply, holds for the cool-down, then recovers step by step to the rule', () => {
    let s: AdaptiveState = initialAdaptive();
    const t = onThrottle(s, 0, O);
    assert.deepEqual(t.change, { from: 1, to: 0.5, reason: 'throttled' });
    s = t.state;
    assert.equal(nextTickAt(s), 60_000);
    assert.equal(onTick(s, 59_999, O).change, undefined);
    const steps: Array<[number, number]> = [];
    for (let now = 60_000; now <= 200_000; now += 1000) {
      const r = onTick(s, now, O);
      s = r.state;
      if (r.change) steps.push([now, r.change.to]);
    }
    assert.deepEqual(steps, [[60_000, 1]]);
    assert.equal(nextTickAt(s), undefined);
  });

  it('counts a burst of replies within holdMs as one signal, but each extends the cool-down', () => {
    let s = onThrottle(initialAdaptive(), 0, O).state;
    const again = onThrottle(s, 500, O);
    assert.equal(again.change, undefined);
    assert.equal(again.state.factor, 0.5);
    assert.equal(nextTickAt(again.state), 60_500);
    s = onThrottle(again.state, 1500, O).state;
    assert.equal(s.factor, 0.25);
  });

  it('never goes below minFactor, and climbs back one step per recoverStepMs', () => {
    let s = initialAdaptive();
    for (let i = 0; i < 6; i++) s = onThrottle(s, i * 2000, O).state;
    assert.equal(s.factor, 0.125);
    const last = 10_000;
    assert.equal(nextTickAt(s), last + 60_000);
    const seen: number[] = [];
    for (let now = last + 60_000; s.factor < 1; now += 10_000) {
      const r = onTick(s, now, O);
      s = r.state;
      seen.push(s.factor);
    }
    assert.deepEqual(seen, [0.25, 0.5, 1]);
  });

  it('a throttling reply during recovery lowers again from where it is', () => {
    let s = onThrottle(initialAdaptive(), 0, O).state;
    s = onThrottle(s, 2000, O).state; // 0.25
    s = onTick(s, 62_000, O).state; // 0.5
    const r = onThrottle(s, 63_000, O);
    assert.deepEqual(r.change, { from: 0.5, to: 0.25, reason: 'throttled' });
    assert.equal(nextTickAt(r.state), 123_000);
  });
});
