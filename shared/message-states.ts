/**
 * The delivery states a message (or one recipient of it) moves through, in lifecycle order —
 * the event types of `email.events` that describe delivery, as opposed to engagement (opened,
 * clicked, ...). The one list the read API's parameters, timelines and searches use.
 */
import type { EventType } from './contracts/email-event.js';

/** Delivery states in lifecycle order: ties in time sort by this order. */
export const MESSAGE_STATES = ['accepted', 'scheduled', 'rendered', 'deferred', 'sent', 'bounced', 'expired', 'failed', 'suppressed', 'cancelled'] as const satisfies readonly EventType[];
export type MessageState = (typeof MESSAGE_STATES)[number];

/**
 * A message's one status from its recipients' states: the worst thing that happened to any of
 * them wins (a failure, a bounce, ...); `sent` only when nothing else applies.
 */
export const STATUS_PRECEDENCE: readonly MessageState[] = ['failed', 'bounced', 'expired', 'suppressed', 'cancelled', 'deferred', 'rendered', 'scheduled', 'accepted'];

/** The states as a ClickHouse tuple literal, for `type IN (...)`. Built from constants only. */
export const MESSAGE_STATES_SQL = `(${MESSAGE_STATES.map((s) => `'${s}'`).join(',')})`;

export function isMessageState(value: string): value is MessageState {
  return (MESSAGE_STATES as readonly string[]).includes(value);
}
