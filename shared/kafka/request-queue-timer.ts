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
 * Importing this module replaces the method with the upstream fix: a check is scheduled while
 * requests are pending (after the throttle, or in 10 ms as before) or while the connection is
 * throttled; with an empty queue and no throttle there is nothing to check, and the next
 * `push` or response schedules it again (kafkajs calls this method from both).
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** The part of kafkajs's internal `RequestQueue` this patch relies on. */
export interface RequestQueueInternals {
  pending: unknown[];
  throttledUntil: number;
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  checkPendingRequests(): void;
  scheduleCheckPendingRequests(): void;
}

/** kafkajs's own interval for re-checking a queue whose requests wait for in-flight room. */
const CHECK_PENDING_REQUESTS_INTERVAL = 10;

/** kafkajs's `RequestQueue` class (`src/network/requestQueue/index.js`). */
export const RequestQueue = require('kafkajs/src/network/requestQueue/index.js') as { prototype: RequestQueueInternals };

function scheduleCheckPendingRequests(this: RequestQueueInternals): void {
  if (this.throttleCheckTimeoutId) return;
  const untilUnthrottled = this.throttledUntil - Date.now();
  let delay: number;
  if (this.pending.length > 0) delay = untilUnthrottled > 0 ? untilUnthrottled : CHECK_PENDING_REQUESTS_INTERVAL;
  else if (untilUnthrottled > 0) delay = untilUnthrottled;
  else return; // nothing waits and nothing is throttled: the next push or response schedules again
  this.throttleCheckTimeoutId = setTimeout(() => {
    this.throttleCheckTimeoutId = null;
    this.checkPendingRequests();
  }, delay);
}

RequestQueue.prototype.scheduleCheckPendingRequests = scheduleCheckPendingRequests;
