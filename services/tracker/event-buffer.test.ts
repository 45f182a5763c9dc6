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
    await new Promise((r) => setImmediate(r));
    assert.equal(pending.length, 2, 'two in flight at once');
    for (let i = 0; i < 5; i++) {
      await waitFor(() => pending.length > 0, 2000, 'a publish');
      pending.shift()!();
    }
    assert.equal(await buffer.drain(2000), true);
    assert.equal(buffer.size, 0);
  });

  test('push does none of the producer work: events pushed in one turn are handed on together once its callbacks are over', async () => {
    const handed: string[] = [];
    const buffer = new EventBuffer({ publish: async (e) => void handed.push(e.messageId), maxQueued: 10, concurrency: 10 });
    // As the tracker's request handlers do: push, then (same callback) the response is written.
    for (let i = 0; i < 3; i++) assert.equal(buffer.push(ev(i)), true);
    assert.deepEqual(handed, [], 'nothing handed to the producer within the pushing callback');
    assert.equal(buffer.size, 3, 'but the events are held');
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(handed, ['m0', 'm1', 'm2'], 'all of them, in order, once the turn is over');
    assert.equal(await buffer.drain(2000), true);
  });

  test('close before the hand-off: nothing is handed on', async () => {
    const handed: string[] = [];
    const buffer = new EventBuffer({ publish: async (e) => void handed.push(e.messageId), maxQueued: 10, concurrency: 10 });
    buffer.push(ev(1));
    buffer.close();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(handed, []);
    assert.equal(buffer.size, 1);
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
