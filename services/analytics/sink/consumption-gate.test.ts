import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { ConsumptionGate } from './consumption-gate.js';

// kafkajs's own pause bookkeeping, so the test sees exactly what the consumer would fetch.
const SubscriptionState = createRequire(import.meta.url)('kafkajs/src/consumer/subscriptionState.js') as new () => {
  assign(tp: Array<{ topic: string; partitions: number[] }>): void;
  pause(tp: Array<{ topic: string; partitions?: number[] }>): void;
  resume(tp: Array<{ topic: string; partitions?: number[] }>): void;
  active(): Array<{ topic: string; partitions: number[] }>;
};

function setup(): { gate: ConsumptionGate; active: () => number[] } {
  const state = new SubscriptionState();
  state.assign([{ topic: 't', partitions: [0, 1, 2] }]);
  const gate = new ConsumptionGate({ pause: (tp) => state.pause(tp), resume: (tp) => state.resume(tp) }, 't');
  gate.assign([0, 1, 2]);
  return { gate, active: () => state.active()[0].partitions };
}

test('a partition waiting out a retry during back-pressure does not resume the others', () => {
  const { gate, active } = setup();
  gate.setBackpressure(true);
  assert.deepEqual(active(), []);
  gate.waitFor(1, 60_000);
  assert.deepEqual(active(), [], 'still nothing fetched');
  gate.setBackpressure(false);
  assert.deepEqual(active(), [0, 2], 'the waiting partition stays paused');
  gate.close();
  assert.deepEqual(active(), []);
});

test('a wait ends by itself; a new assignment keeps the desired state', async () => {
  const { gate, active } = setup();
  gate.waitFor(2, 20);
  assert.deepEqual(active(), [0, 1]);
  await new Promise((r) => setTimeout(r, 60));
  assert.deepEqual(active(), [0, 1, 2]);
  gate.setBackpressure(true);
  gate.assign([0, 1, 2]);
  assert.deepEqual(active(), []);
  gate.close();
});
