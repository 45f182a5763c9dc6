/**
 * Stops kafkajs 2.2.4's per-connection timers from waking an idle process hundreds of times a
 * second. Importing this module replaces two methods of its internal `RequestQueue`.
 *
 * The pending-request check. `scheduleCheckPendingRequests` runs after every response and arms a
 * `setTimeout` even when nothing is pending and the connection is not throttled; its delay is
 * then `throttledUntil - now`, negative, so it fires after 1 ms, checks an empty queue and arms
 * itself again, forever (kafkajs issues #1556 and #1704, fixes in PRs #1667/#1768 never
 * released; 2.2.4 is the last kafkajs). Replaced: a timer is armed only for requests held back by
 * a client-side throttle, for the moment the throttle ends. A request that waits for in-flight
 * room is sent by the response (or timeout) that frees it — kafkajs's `fulfillRequest` checks the
 * queue — so it arms no timer (kafkajs armed a 10 ms one, and its 1 ms loop used to pick such
 * requests up sooner). If the throttle has ended by the time this runs (the caller saw it active a
 * moment earlier), the queue is checked again at once, never after a 10 ms fallback. With an empty
 * queue nothing is armed: an idle connection stays idle, and the next `push` or response
 * schedules again (kafkajs calls this method from both).
 *
 * The request-timeout check. `scheduleRequestTimeoutCheck` gives every connection its own
 * `setInterval` of 100 ms that looks for requests past their timeout — and a consumer always has a
 * fetch in flight, so with forty-odd connections in `npm start`'s stages process that was ~400
 * timer callbacks a second at rest, the largest part of its idle CPU after the 1 ms loop was gone.
 * Replaced: one sweep per process, every `TIMEOUT_SWEEP_MS`, over the queues that enforce
 * timeouts; a queue joins when its connection connects and leaves on `destroy`, as kafkajs's
 * interval was set and cleared. A request times out at most a sweep later than it used to
 * (request timeouts are tens of seconds), and the sweep stops when no queue is left.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** The part of kafkajs's internal `RequestQueue` this patch relies on. */
export interface RequestQueueInternals {
  pending: unknown[];
  inflight: Map<number, { sentAt: number | null; requestTimeout: number; timeoutRequest(): void }>;
  enforceRequestTimeout: boolean;
  throttledUntil: number;
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  isConnected(): boolean;
  canSendSocketRequestImmediately(): boolean;
  checkPendingRequests(): void;
  scheduleCheckPendingRequests(): void;
  scheduleRequestTimeoutCheck(): void;
  destroy(): void;
}

/** How often the one timeout sweep of a process runs. */
export const TIMEOUT_SWEEP_MS = 1000;

/** kafkajs's `RequestQueue` class (`src/network/requestQueue/index.js`). */
export const RequestQueue = require('kafkajs/src/network/requestQueue/index.js') as { prototype: RequestQueueInternals };

function scheduleCheckPendingRequests(this: RequestQueueInternals): void {
  if (this.throttleCheckTimeoutId || this.pending.length === 0) return;
  const untilUnthrottled = this.throttledUntil - Date.now();
  if (untilUnthrottled > 0) {
    this.throttleCheckTimeoutId = setTimeout(() => {
      this.throttleCheckTimeoutId = null;
      this.checkPendingRequests();
    }, untilUnthrottled);
  } else if (this.canSendSocketRequestImmediately()) {
    // The throttle ended between the caller's check and now: send without waiting for a timer.
    queueMicrotask(() => this.checkPendingRequests());
  }
  // else: the requests wait for in-flight room; the response or timeout that frees it sends them.
}

RequestQueue.prototype.scheduleCheckPendingRequests = scheduleCheckPendingRequests;

/** The queues whose in-flight requests the sweep times out. */
const watched = new Set<RequestQueueInternals>();
let sweep: NodeJS.Timeout | undefined;

function sweepTimeouts(): void {
  const now = Date.now();
  for (const queue of watched) {
    for (const request of [...queue.inflight.values()]) {
      if (request.sentAt !== null && now - request.sentAt > request.requestTimeout) request.timeoutRequest();
    }
    if (!queue.isConnected()) queue.destroy();
  }
  if (watched.size === 0 && sweep) {
    clearInterval(sweep);
    sweep = undefined;
  }
}

function scheduleRequestTimeoutCheck(this: RequestQueueInternals): void {
  if (!this.enforceRequestTimeout) return;
  watched.add(this);
  // Sockets keep the process alive while requests are in flight; the sweep need not.
  sweep ??= setInterval(sweepTimeouts, TIMEOUT_SWEEP_MS).unref();
}

function destroy(this: RequestQueueInternals): void {
  watched.delete(this);
  clearTimeout(this.throttleCheckTimeoutId ?? undefined);
  this.throttleCheckTimeoutId = null;
}

RequestQueue.prototype.scheduleRequestTimeoutCheck = scheduleRequestTimeoutCheck;
RequestQueue.prototype.destroy = destroy;

/** How many queues the sweep watches (tests). */
export function watchedQueues(): number {
  return watched.size;
}
