import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Value } from '@sinclair/typebox/value';
import { DayCounter, Warmup, WarmupSchema, dailyCap, warmupDay, warmupProblems, type SentCounter, type WarmupPlan } from './warmup.js';

const plan: WarmupPlan = { start: '2026-12-01', schedule: [[1, 50], [2, 100], [3, 500], [5, 1000]] };
const at = (iso: string) => Date.parse(iso);

describe('warm-up schedule', () => {
  it('counts UTC days from the start date as day 1', () => {
    assert.equal(warmupDay(plan, at('2026-12-01T00:00:00Z')), 1);
    assert.equal(warmupDay(plan, at('2026-12-01T23:59:59Z')), 1);
    assert.equal(warmupDay(plan, at('2026-12-02T00:00:00Z')), 2);
    assert.equal(warmupDay(plan, at('2026-11-30T12:00:00Z')), 0);
  });

  it('gives each day the cap of the last entry at or before it, then `after` (or none)', () => {
    const caps = ['2026-11-30', '2026-12-01', '2026-12-02', '2026-12-03', '2026-12-04', '2026-12-05', '2026-12-06'].map((d) => dailyCap(plan, at(`${d}T10:00:00Z`)));
    assert.deepEqual(caps, [50, 50, 100, 500, 500, 1000, Infinity]);
    assert.equal(dailyCap({ ...plan, after: 20_000 }, at('2026-12-09T00:00:00Z')), 20_000);
  });

  it('validates: the schema, real dates and increasing days, each problem named', () => {
    assert.ok(Value.Check(WarmupSchema, plan));
    assert.ok(!Value.Check(WarmupSchema, { start: '1 Dec', schedule: [] }));
    assert.ok(!Value.Check(WarmupSchema, { ...plan, extra: 1 }));
    assert.deepEqual(warmupProblems({ start: '2026-13-45', schedule: [[1, 5], [3, 10], [2, 20], [2, 30]] }, 'pools.a.addresses[0].warmup'), [
      'pools.a.addresses[0].warmup.start: not a date: 2026-13-45',
      'pools.a.addresses[0].warmup.schedule[2]: day 2 does not come after day 3',
      'pools.a.addresses[0].warmup.schedule[3]: day 2 does not come after day 2',
    ]);
  });
});

describe('Warmup', () => {
  it('makes an address unavailable at its cap, again available the next UTC day', () => {
    const w = new Warmup(new Map([['127.0.0.2', plan]]));
    const day1 = at('2026-12-01T08:00:00Z');
    let capped;
    for (let i = 0; i < 50; i++) {
      assert.ok(w.available('127.0.0.2', day1));
      capped = w.record('127.0.0.2', day1);
    }
    assert.deepEqual(capped, { source: '127.0.0.2', day: 1, cap: 50, sent: 50 });
    assert.equal(w.available('127.0.0.2', day1), false);
    assert.equal(w.available('127.0.0.3', day1), true, 'an address without a plan');
    const day2 = at('2026-12-02T00:00:01Z');
    assert.equal(w.available('127.0.0.2', day2), true);
    assert.deepEqual(w.usage('127.0.0.2', day2), { source: '127.0.0.2', day: 2, cap: 100, sent: 0 });
  });

  it('reads an injected counter (e.g. fed by every replica\'s sent events)', () => {
    const shared: SentCounter = { add() {}, count: (source) => (source === '127.0.0.2' ? 50 : 0) };
    const w = new Warmup(new Map([['127.0.0.2', plan]]), shared);
    assert.equal(w.available('127.0.0.2', at('2026-12-01T08:00:00Z')), false);
  });

  it('DayCounter starts each UTC day at 0', () => {
    const c = new DayCounter();
    c.add('a', at('2026-12-01T23:59:59Z'));
    assert.equal(c.count('a', at('2026-12-01T23:59:59Z')), 1);
    assert.equal(c.count('a', at('2026-12-02T00:00:00Z')), 0);
  });
});

describe('warm-up claims', () => {
  const one: WarmupPlan = { start: '2026-12-01', schedule: [[1, 3]] };
  const now = at('2026-12-01T10:00:00Z');

  it('messages routed at once claim the cap before any is counted; a sent one settles its claim, a given-back one frees it', () => {
    const w = new Warmup(new Map([['127.0.0.2', one]]));
    assert.deepEqual([1, 2, 3, 4].map(() => w.claim('127.0.0.2', now)), [true, true, true, false]);
    assert.equal(w.available('127.0.0.2', now), false);
    w.record('127.0.0.2', now); // sent: counted, its claim settled
    assert.equal(w.available('127.0.0.2', now), false);
    w.release('127.0.0.2'); // deferred: its share is free again
    assert.equal(w.available('127.0.0.2', now), true);
    assert.equal(w.claim('127.0.0.2', now), true);
    assert.equal(w.claim('127.0.0.2', now), false);
    assert.equal(w.claim('127.0.0.9', now), true, 'an address without a plan always may');
  });

  it('a claim never settled stops counting after ten minutes', () => {
    const w = new Warmup(new Map([['127.0.0.2', one]]));
    for (let i = 0; i < 3; i++) w.claim('127.0.0.2', now);
    assert.equal(w.available('127.0.0.2', now + 60_000), false);
    assert.equal(w.available('127.0.0.2', now + 10 * 60_000 + 1), true);
  });
});
