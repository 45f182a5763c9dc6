import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TokenBucket } from './token-bucket.js';

/** Takes tokens as soon as they are there, stepping a clock 1 ms at a time; returns the take times. */
function drain(b: TokenBucket, fromMs: number, untilMs: number): number[] {
  const at: number[] = [];
  for (let t = fromMs; t < untilMs; t++) {
    while (b.waitMs(t) === 0) {
      b.take(t);
      at.push(t);
    }
  }
  return at;
}

describe('TokenBucket', () => {
  it('paces a per-second limit evenly, with a burst of at most burstMs worth', () => {
    const b = new TokenBucket([{ limit: 50, ms: 1000 }], 100, 0);
    const at = drain(b, 0, 10_000);
    // 5 saved-up tokens at the start, then one every 20 ms.
    assert.equal(at.filter((t) => t === 0).length, 5);
    assert.equal(at.length, 5 + 500 - 1);
    const inSecond = (s: number) => at.filter((t) => t >= s * 1000 && t < (s + 1) * 1000).length;
    for (let s = 1; s < 10; s++) assert.equal(inSecond(s), 50, `second ${s}`);
  });

  it('holds every window at once: paced by the shortest, capped by the longer ones over any window', () => {
    // 10/s but only 60/min: the first 60 go at 10/s, then nothing until the minute slides on.
    const b = new TokenBucket([{ limit: 60, ms: 60_000 }, { limit: 10, ms: 1000 }], 100, 0);
    const at = drain(b, 0, 180_000);
    assert.equal(at.filter((t) => t < 60_000).length, 60);
    assert.ok(at[59] < 6_000, 'paced at 10/s');
    for (let from = 0; from <= 120_000; from += 500) assert.ok(at.filter((t) => t >= from && t < from + 60_000).length <= 60, `at most 60 in the minute from ${from}`);
    assert.equal(at.filter((t) => t >= 60_000 && t < 120_000).length, 60, 'the next minute again');
    assert.equal(b.perSecond(), 10);
    assert.equal(b.waitMs(at[179] + 1, 1) > 0, true);
  });

  it('estimates waits across windows: the n-th message of a full minute waits for the minute to slide', () => {
    const b = new TokenBucket([{ limit: 1000, ms: 1000 }, { limit: 3, ms: 60_000 }], 100, 0);
    for (let i = 0; i < 3; i++) b.take(0);
    assert.equal(b.waitMs(0), 60_000);
    assert.equal(b.waitMs(30_000), 30_000);
    assert.equal(b.waitMs(60_000), 0);
  });

  it('says how long the n-th message waits', () => {
    const b = new TokenBucket([{ limit: 10, ms: 1000 }], 100, 0);
    b.take(0); // the one saved-up token
    assert.equal(b.waitMs(0), 100);
    assert.equal(b.waitMs(0, 5), 500);
    assert.equal(b.waitMs(50), 50);
  });

  it('scales every window by the factor, and back', () => {
    const b = new TokenBucket([{ limit: 100, ms: 1000 }], 100, 0);
    b.setFactor(0.25, 0);
    assert.equal(b.perSecond(), 25);
    // 2.5 tokens saved up (2 taken at once, half a token left), then 25 a second.
    assert.equal(drain(b, 0, 4000).length, 2 + 100);
    b.setFactor(1, 4000);
    assert.equal(b.perSecond(), 100);
  });

  it('limits nothing without windows', () => {
    const b = new TokenBucket([], 100, 0);
    assert.ok(b.unlimited);
    for (let i = 0; i < 1000; i++) b.take(0);
    assert.equal(b.waitMs(0), 0);
    assert.equal(b.perSecond(), Infinity);
  });
});
