import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka, logLevel } from 'kafkajs';
import { RequestQueue, TIMEOUT_SWEEP_MS, watchedQueues, type RequestQueueInternals } from './request-queue-timer.js';
import { startTestBroker, waitFor } from '../../test/helpers/broker.js';

const Queue = RequestQueue as unknown as new (o: Record<string, unknown>) => RequestQueueInternals & {
  push(r: { entry: { correlationId: number; apiKey: number; apiName: string; apiVersion: number; resolve(v: unknown): void; reject(e: Error): void }; expectResponse: boolean; sendRequest(): void }): void;
  maybeThrottle(ms: number): void;
  destroy(): void;
};
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

test('an idle kafkajs connection arms no timer between requests (no 1 ms check loop)', async (t) => {
  const broker = await startTestBroker();
  t.after(() => broker.destroy());
  const admin = new Kafka({ brokers: [broker.bootstrap], clientId: 'idle-timer', logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  t.after(() => admin.disconnect());
  await admin.listTopics();

  const proto = RequestQueue.prototype;
  const original = proto.checkPendingRequests;
  let checks = 0;
  proto.checkPendingRequests = function (this: RequestQueueInternals) {
    checks++;
    return original.call(this);
  };
  t.after(() => {
    proto.checkPendingRequests = original;
  });
  await admin.listTopics(); // one response: kafkajs checks the queue once, then nothing is pending
  const afterRequest = checks;
  // A window of idleness: kafkajs 2.2.4 re-checked the empty queue about once per millisecond here.
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(checks - afterRequest <= 2, `the idle connection's queue was checked ${checks - afterRequest} times in 300 ms`);
});

test('a request held back by client-side throttling is still sent when the throttle ends', async () => {
  const queue = new Queue({ maxInFlightRequests: null, requestTimeout: 30_000, enforceRequestTimeout: false, clientId: 'c', broker: 'b', logger: quiet });
  try {
    queue.maybeThrottle(30);
    const throttledAt = Date.now();
    let sentAt = 0;
    queue.push({ entry: { correlationId: 1, apiKey: 3, apiName: 'Metadata', apiVersion: 0, resolve: () => undefined, reject: () => undefined }, expectResponse: false, sendRequest: () => void (sentAt = Date.now()) });
    assert.equal(sentAt, 0, 'held back while throttled');
    await waitFor(() => sentAt, 2000, 'the throttled request to be sent');
    assert.ok(sentAt - throttledAt >= 25, `sent ${sentAt - throttledAt} ms after the throttle began`);
    assert.equal(queue.pending.length, 0);
  } finally {
    queue.destroy();
  }
});

type Pushed = Parameters<InstanceType<typeof Queue>['push']>[0];
function request(correlationId: number, onSend: () => void): Pushed {
  return { entry: { correlationId, apiKey: 0, apiName: 'Produce', apiVersion: 3, resolve: () => undefined, reject: () => undefined }, expectResponse: true, sendRequest: onSend };
}

test('a request waiting for in-flight room arms no timer and is sent the moment the response frees the room', () => {
  const queue = new Queue({ maxInFlightRequests: 1, requestTimeout: 30_000, enforceRequestTimeout: false, clientId: 'c', broker: 'b', logger: quiet }) as InstanceType<typeof Queue> & {
    fulfillRequest(r: { correlationId: number; payload: Buffer; size: number }): void;
  };
  try {
    const sent: number[] = [];
    queue.push(request(1, () => sent.push(1)));
    queue.push(request(2, () => sent.push(2)));
    assert.deepEqual(sent, [1], 'the second request waits: one in flight at most');
    // kafkajs armed a 10 ms check here; only the response can make room, so no timer is needed.
    assert.equal(queue.throttleCheckTimeoutId, null, 'a timer was armed for a request that only waits for in-flight room');
    queue.fulfillRequest({ correlationId: 1, payload: Buffer.alloc(0), size: 0 });
    assert.deepEqual(sent, [1, 2], 'sent synchronously when the first response arrived');
  } finally {
    queue.destroy();
  }
});

test('a request whose throttle ended while the queue was being checked is sent at once, not after a 10 ms timer', async () => {
  const queue = new Queue({ maxInFlightRequests: null, requestTimeout: 30_000, enforceRequestTimeout: false, clientId: 'c', broker: 'b', logger: quiet });
  const realNow = Date.now;
  try {
    let sent = false;
    const end = realNow() + 60_000;
    queue.throttledUntil = end;
    queue.push(request(1, () => void (sent = true)));
    assert.equal(sent, false, 'held back while throttled');
    clearTimeout(queue.throttleCheckTimeoutId ?? undefined);
    queue.throttleCheckTimeoutId = null;
    // The check runs one millisecond before the throttle ends; by the time it schedules the
    // next check, the throttle is over (Date.now() moved on in between).
    let calls = 0;
    Date.now = () => (calls++ === 0 ? end - 1 : end);
    queue.checkPendingRequests();
    assert.equal(sent, false, 'still throttled when the check looked');
    await Promise.resolve();
    await Promise.resolve();
    Date.now = realNow;
    assert.equal(sent, true, 'the request waited for a timer although nothing held it back any more');
  } finally {
    Date.now = realNow;
    queue.destroy();
  }
});

test('connections that enforce request timeouts share one sweep instead of a 100 ms interval each', (t) => {
  const realSetInterval = globalThis.setInterval;
  let intervals = 0;
  globalThis.setInterval = ((fn: () => void, ms?: number) => {
    intervals++;
    return realSetInterval(fn, ms);
  }) as typeof setInterval;
  const queues = Array.from({ length: 40 }, () => new Queue({ maxInFlightRequests: null, requestTimeout: 30_000, enforceRequestTimeout: true, clientId: 'c', broker: 'b', logger: quiet, isConnected: () => true }));
  t.after(() => {
    globalThis.setInterval = realSetInterval;
    for (const q of queues) q.destroy();
  });
  const before = watchedQueues();
  for (const q of queues) q.scheduleRequestTimeoutCheck();
  assert.ok(intervals <= 1, `${intervals} intervals armed for 40 connections`);
  assert.equal(watchedQueues(), before + 40);
  for (const q of queues) q.destroy();
  assert.equal(watchedQueues(), before, 'destroy leaves the sweep');
});

test('a request past its timeout is still timed out by the sweep; a queue that does not enforce timeouts is not watched', async () => {
  const queue = new Queue({ maxInFlightRequests: null, requestTimeout: 50, enforceRequestTimeout: true, clientId: 'c', broker: 'b', logger: quiet, isConnected: () => true });
  const lax = new Queue({ maxInFlightRequests: null, requestTimeout: 50, enforceRequestTimeout: false, clientId: 'c', broker: 'b', logger: quiet, isConnected: () => true });
  try {
    const before = watchedQueues();
    lax.scheduleRequestTimeoutCheck();
    assert.equal(watchedQueues(), before, 'a queue without enforceRequestTimeout joined the sweep');
    queue.scheduleRequestTimeoutCheck();
    let failed: Error | undefined;
    const started = Date.now();
    queue.push({ entry: { correlationId: 7, apiKey: 1, apiName: 'Fetch', apiVersion: 11, resolve: () => undefined, reject: (e: Error) => void (failed = e) }, expectResponse: true, sendRequest: () => undefined });
    await waitFor(() => failed, 3 * TIMEOUT_SWEEP_MS, 'the request to time out');
    assert.match(String(failed?.message), /timed out/);
    assert.ok(Date.now() - started <= TIMEOUT_SWEEP_MS + 500, `timed out after ${Date.now() - started} ms`);
  } finally {
    queue.destroy();
    lax.destroy();
  }
});

test('a queue whose connection is gone leaves the sweep', async () => {
  let connected = true;
  const queue = new Queue({ maxInFlightRequests: null, requestTimeout: 30_000, enforceRequestTimeout: true, clientId: 'c', broker: 'b', logger: quiet, isConnected: () => connected });
  const before = watchedQueues();
  queue.scheduleRequestTimeoutCheck();
  assert.equal(watchedQueues(), before + 1);
  connected = false;
  await waitFor(() => watchedQueues() === before || undefined, 3 * TIMEOUT_SWEEP_MS, 'the queue to leave the sweep');
  queue.destroy();
});
