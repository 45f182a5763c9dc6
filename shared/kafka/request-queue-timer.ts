/**
 * Stops kafkajs 2.2.4 from spinning a 1 ms timer on every idle connection.
 *
 * kafkajs's `RequestQueue.scheduleCheckPendingRequests` runs after every response and arms a
 * `setTimeout` even when nothing is pending and the connection is not throttled; its delay is
 * then `throttledUntil - now`, negative, so it fires after 1 ms, checks an empty queue and arms
 * itself again, forever (kafkajs issues #1556 and #1704, fixes in PRs #1667/#1768 never
 * released; 2.2.4 is the last kafkajs). Every connection of every consumer, producer and admin
 * client does this, which was most of each stage's idle CPU.
 *
 * Importing this module replaces the method: a timer is armed only for requests held back by a
 * client-side throttle, for the moment the throttle ends. A request that waits for in-flight room
 * is sent by the response (or timeout) that frees it — kafkajs's `fulfillRequest` checks the
 * queue — so it arms no timer (kafkajs armed a 10 ms one, and its 1 ms loop used to pick such
 * requests up sooner). If the throttle has ended by the time this runs (the caller saw it active a
 * moment earlier), the queue is checked again at once, never after a 10 ms fallback. With an empty
 * queue nothing is armed: an idle connection stays idle, and the next `push` or response
 * schedules again (kafkajs calls this method from both).
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** The part of kafkajs's internal `RequestQueue` this patch relies on. */
export interface RequestQueueInternals {
  pending: unknown[];
  throttledUntil: number;
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  canSendSocketRequestImmediately(): boolean;
  checkPendingRequests(): void;
  scheduleCheckPendingRequests(): void;
}

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
