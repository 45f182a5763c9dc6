import { test } from 'node:test';
import assert from 'node:assert/strict';
import { figures, rates } from './stats-queries.js';
import { summaryStatus } from './message-queries.js';

test('rates: delivery and bounce over ended deliveries, deferral over SMTP attempts; null without a denominator', () => {
  const cases: Array<[Record<string, number>, [number | null, number | null, number | null]]> = [
    [{ sent: 8, bounced: 1, expired: 1, deferred: 3 }, [0.8, 0.1, 3 / 12]],
    [{ sent: 5 }, [1, 0, 0]],
    [{ deferred: 4 }, [null, null, 1]],
    [{ accepted: 10 }, [null, null, null]],
  ];
  for (const [counts, [delivery, bounce, deferral]] of cases) assert.deepEqual(rates(counts), { delivery, bounce, deferral }, JSON.stringify(counts));
});

test('figures: every event type counted (zero when absent), latency from the sent row', () => {
  const f = figures([
    { key: '', type: 'sent', events: 3, latency: [100, 200, 300, 400] },
    { key: '', type: 'accepted', events: 4, latency: [Number.NaN, Number.NaN, Number.NaN, Number.NaN] },
  ]);
  assert.equal(f.counts.sent, 3);
  assert.equal(f.counts.accepted, 4);
  assert.equal(f.counts.clicked, 0);
  assert.deepEqual(f.latencyMs, { p50: 100, p90: 200, p95: 300, p99: 400 });
  assert.deepEqual(figures([]).latencyMs, { p50: null, p90: null, p95: null, p99: null });
});

test('summaryStatus: problems first, sent only when every domain is sent', () => {
  const cases: Array<[string[], string]> = [
    [['sent', 'sent'], 'sent'],
    [['sent', 'bounced'], 'bounced'],
    [['deferred', 'sent'], 'deferred'],
    [['failed'], 'failed'],
    [['rendered'], 'rendered'],
    [[], 'accepted'],
  ];
  for (const [states, want] of cases) assert.equal(summaryStatus(states), want, states.join(','));
});
