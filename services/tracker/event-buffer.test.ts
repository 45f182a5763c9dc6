import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EventBuffer } from './event-buffer.js';
import type { EventInput } from '../../shared/events.js';
import { waitFor } from '../../test/helpers/broker.js';

const ev = (n: number): EventInput => ({ type: 'opened', messageId: `m${n}`, tenant: 'acme' });

describe('event buffer', () => {
  test('push never waits; beyond maxQueued events are dropped and counted', async () => {
    const pending: Array<() => void> = [];
    const buffer = new EventBuffer({ publish: () => new Promise<void>((r) => pending.push(r)), maxQueued: 5, concurrency: 2 });
    const dropped: string[] = [];
    buffer.on('dropped', (reason: string) => dropped.push(reason));
    const accepted = Array.from({ length: 8 }, (_, i) => buffer.push(ev(i)));
    assert.deepEqual(accepted, [true, true, true, true, true, false, false, false]);
    assert.deepEqual(dropped, ['full', 'full', 'full']);
    assert.equal(pending.length, 2, 'two in flight at once');
    for (let i = 0; i < 5; i++) {
      await waitFor(() => pending.length > 0, 2000, 'a publish');
      pending.shift()!();
    }
    assert.equal(await buffer.drain(2000), true);
    assert.equal(buffer.size, 0);
  });

  test('a failed publish keeps the event and sends it again after the pause, in order', async () => {
    let fail = true;
    const published: string[] = [];
    const buffer = new EventBuffer({
      publish: async (e) => {
        if (fail) throw new Error('broker down');
        published.push(e.messageId);
      },
      maxQueued: 10,
      concurrency: 1,
      retryDelayMs: 50,
    });
    let failures = 0;
    buffer.on('failed', () => failures++);
    buffer.push(ev(1));
    buffer.push(ev(2));
    await waitFor(() => failures >= 2, 2000, 'failures');
    assert.equal(buffer.size, 2);
    fail = false;
    assert.equal(await buffer.drain(5000), true);
    assert.deepEqual(published, ['m1', 'm2']);
  });
});
