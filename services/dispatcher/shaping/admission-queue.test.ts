import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Priority } from '../../../shared/config.js';
import { AdmissionQueue } from './admission-queue.js';
import { ManualClock } from './clock.js';
import { ShapingDeferral } from './shaping-deferral.js';
import { TokenBucket } from './token-bucket.js';

function setup(opts: { perSecond: number; maxWaiting?: number; maxWaitMs?: number }) {
  const clock = new ManualClock(0);
  const bucket = new TokenBucket([{ limit: opts.perSecond, ms: 1000 }], 1, 0);
  const admitted: Array<{ ms: number; priority: Priority }> = [];
  const deferred: ShapingDeferral[] = [];
  const q = new AdmissionQueue('127.0.0.2|gmail', [bucket], clock, { maxWaiting: opts.maxWaiting ?? 100, maxWaitMs: opts.maxWaitMs ?? 10_000 }, {
    admitted: (ms, priority) => admitted.push({ ms, priority }),
    deferred: (err) => deferred.push(err),
  });
  const order: string[] = [];
  const admit = (name: string, p: Priority) =>
    q.admit(p).then(
      () => void order.push(name),
      (err: unknown) => void order.push(`${name}:${(err as ShapingDeferral).code}`),
    );
  return { clock, q, admit, order, admitted, deferred, bucket };
}

const flush = () => new Promise((r) => setImmediate(r));

describe('AdmissionQueue', () => {
  it('admits at once while tokens are there, then one per token interval, in arrival order', async () => {
    const { clock, admit, order, admitted } = setup({ perSecond: 10 });
    for (const n of ['a', 'b', 'c', 'd']) void admit(n, 'bulk');
    await flush();
    assert.deepEqual(order, ['a']);
    clock.advance(99);
    await flush();
    assert.deepEqual(order, ['a']);
    clock.advance(1);
    await flush();
    assert.deepEqual(order, ['a', 'b']);
    clock.advance(200);
    await flush();
    assert.deepEqual(order, ['a', 'b', 'c', 'd']);
    assert.deepEqual(admitted.map((x) => x.ms), [0, 100, 200, 300]);
  });

  it('serves critical before transactional before bulk, whatever the arrival order', async () => {
    const { clock, admit, order } = setup({ perSecond: 10 });
    void admit('first', 'bulk'); // takes the one saved-up token
    void admit('bulk', 'bulk');
    void admit('tx', 'transactional');
    void admit('crit', 'critical');
    clock.advance(300);
    await flush();
    assert.deepEqual(order, ['first', 'crit', 'tx', 'bulk']);
  });

  it('defers at once when the queue is full, without disturbing the waiters', async () => {
    const { clock, admit, order, deferred } = setup({ perSecond: 10, maxWaiting: 2 });
    for (const n of ['a', 'b', 'c', 'd']) void admit(n, 'bulk');
    await flush();
    assert.deepEqual(order, ['a', 'd:SHAPING_DEFERRED']);
    assert.equal(deferred[0].reason, 'queue-full');
    assert.equal(deferred[0].retriable, true);
    clock.advance(200);
    await flush();
    assert.deepEqual(order, ['a', 'd:SHAPING_DEFERRED', 'b', 'c']);
  });

  it('defers at once a message whose wait would pass maxWaitMs', async () => {
    const { admit, order, deferred } = setup({ perSecond: 10, maxWaitMs: 250 });
    for (const n of ['a', 'b', 'c', 'd']) void admit(n, 'bulk');
    await flush();
    // a now, b at 100 ms, c at 200 ms, d would wait 300 ms.
    assert.deepEqual(order, ['a', 'd:SHAPING_DEFERRED']);
    assert.equal(deferred[0].reason, 'wait-too-long');
    assert.ok(deferred[0].waitMs > 250);
  });

  it('defers a waiter at its deadline when higher priorities kept overtaking it', async () => {
    const { clock, admit, order } = setup({ perSecond: 10, maxWaitMs: 250 });
    void admit('a', 'bulk');
    void admit('bulk', 'bulk'); // due at 100 ms
    void admit('c1', 'critical'); // goes first: bulk is now due at 200
    clock.advance(50);
    void admit('c2', 'critical'); // bulk due at 300: past its deadline at 250
    clock.advance(200);
    await flush();
    assert.deepEqual(order, ['a', 'c1', 'c2', 'bulk:SHAPING_DEFERRED']);
  });

  it('wakes up at once when the rate goes up (pump after a change)', async () => {
    const { clock, q, admit, order, bucket } = setup({ perSecond: 1 });
    void admit('a', 'bulk');
    void admit('b', 'bulk');
    clock.advance(10);
    bucket.setFactor(100, clock.now());
    q.pump();
    clock.advance(10);
    await flush();
    assert.deepEqual(order, ['a', 'b']);
  });
});
