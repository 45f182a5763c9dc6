/**
 * The tracker bench's pause notes read a real prom-client registry (the one every stage serves
 * on /metrics): GC pauses counted between two scrapes, the event-loop delay of the window.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRegistry } from '../../shared/metrics.js';
import { waitFor } from '../helpers/broker.js';
import { metricSum, pauseNotes } from '../bench/tracker.bench.js';

test('pause notes: minor GCs between two scrapes of a stage registry, and its event-loop delay', async () => {
  const registry = createRegistry('tracker');
  const before = await registry.metrics();
  const minors = (text: string) => metricSum(text, 'postline_nodejs_gc_duration_seconds_count', 'kind="minor"');
  let keep: unknown[] = [];
  // Young garbage until prom-client's GC observer has seen a scavenge.
  await waitFor(
    async () => {
      for (let i = 0; i < 200_000; i++) keep = [{ i }, keep.length > 1000 ? [] : keep];
      return minors(await registry.metrics()) > minors(before);
    },
    20_000,
    'a minor GC',
  );
  const after = await registry.metrics();
  const notes = pauseNotes(before, after);
  const n = Number(/GC minor (\d+) /.exec(notes)?.[1]);
  assert.ok(n >= 1, notes);
  assert.equal(n, minors(after) - minors(before), notes);
  assert.match(notes, /event-loop delay p99 \d+\.\d ms, max \d+\.\d ms$/);
  assert.equal(metricSum('x_total{a="1"} 2\nx_total{a="2"} 3\nx_total_more 9\n', 'x_total'), 5);
  assert.equal(metricSum('x_total{a="1"} 2\nx_total{a="2"} 3\n', 'x_total', 'a="2"'), 3);
});
