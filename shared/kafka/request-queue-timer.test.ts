import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka, logLevel } from 'kafkajs';
import { RequestQueue, type RequestQueueInternals } from './request-queue-timer.js';
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
