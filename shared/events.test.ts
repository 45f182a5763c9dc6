import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventPublisher, stableEventId } from './events.js';
import type { BatchingProducer } from './kafka/batching-producer.js';

const publisher = new EventPublisher({} as BatchingProducer, 'test');

test('build: a random event id unless the stage passes one; `at` defaults to now', () => {
  const a = publisher.build({ type: 'sent', messageId: 'm', tenant: 'acme' });
  const b = publisher.build({ type: 'sent', messageId: 'm', tenant: 'acme' });
  assert.notEqual(a.eventId, b.eventId);
  assert.ok(Date.parse(a.at) > 0);
  const fixed = publisher.build({ type: 'complained', messageId: 'm', tenant: 'acme', eventId: stableEventId('ses', 'x'), at: '2026-12-03T10:00:00.000Z' });
  assert.equal(fixed.eventId, stableEventId('ses', 'x'));
  assert.equal(fixed.at, '2026-12-03T10:00:00.000Z');
  assert.equal(fixed.stage, 'test');
});

test('stableEventId: UUID-shaped, the same for the same parts, different when parts move', () => {
  assert.match(stableEventId('a', 'b'), /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(stableEventId('a', 'b'), stableEventId('a', 'b'));
  assert.notEqual(stableEventId('a', 'b'), stableEventId('ab'));
  assert.notEqual(stableEventId('a', 'b'), stableEventId('b', 'a'));
});
