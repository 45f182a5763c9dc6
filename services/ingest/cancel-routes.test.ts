import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cancellableFromTimeline } from './cancel-routes.js';

test('what a timeline says can still be cancelled', () => {
  const steps = (...types: string[]) => types.map((type) => ({ type }));
  const cases: Array<[Parameters<typeof cancellableFromTimeline>[0], ReturnType<typeof cancellableFromTimeline>]> = [
    [{ timeline: steps('accepted', 'scheduled') }, 'scheduled'],
    [{ timeline: steps('accepted', 'scheduled', 'rendered'), recipients: [{ state: 'rendered' }] }, undefined],
    [{ timeline: steps('accepted', 'rendered', 'deferred'), recipients: [{ state: 'deferred' }, { state: 'sent' }] }, 'retries'],
    [{ timeline: steps('accepted', 'rendered', 'sent'), recipients: [{ state: 'sent' }] }, undefined],
    [{ timeline: steps('accepted', 'scheduled', 'cancelled') }, 'cancelled'],
  ];
  for (const [view, want] of cases) assert.equal(cancellableFromTimeline(view), want, JSON.stringify(view));
});
