/**
 * Who may take a connection of a fleet, so that critical mail never waits behind bulk.
 *
 * Nested reservation: of a fleet's capacity `cap` (its maximum, or the lower ceiling the host
 * imposed), bulk may hold at most `cap − reserve.critical − reserve.transactional` connections,
 * transactional and bulk together at most `cap − reserve.critical`, and critical may use all of
 * it. Each reserve takes at most a third of `cap` (`reserveAt`): at a shaped site's cap of 5,
 * the default reserves (4 + 2) become 1 + 1, not all but one connection. So bulk can never occupy the whole fleet, and while any connection is free to a priority's
 * share, that priority gets one without waiting for lower ones. Each share is at least 1, so no
 * priority starves when the host allows only a few connections. Pure and table-tested.
 */
import type { Priority } from '../../shared/config.js';

/** From highest to lowest. */
export const PRIORITY_ORDER: readonly Priority[] = ['critical', 'transactional', 'bulk'];

export interface Reserve {
  /** Connections only critical may use. */
  critical: number;
  /** Further connections bulk may not use. */
  transactional: number;
}

export interface AdmissionState {
  /** Most connections the fleet may have now. */
  cap: number;
  reserve: Reserve;
  /** Connections leased (or promised) per priority. */
  busy: Record<Priority, number>;
  /** Open connections nobody is using. */
  idle: number;
  /** Connections being opened and not yet promised to anyone. */
  opening: number;
  /** Open + opening connections. */
  total: number;
  /** A new connection may be opened (false while the host's circuit breaker is open). Default true. */
  canOpen?: boolean;
}

/**
 * - `use-idle`: lease an idle connection now;
 * - `await-opening`: a connection being opened will serve this request;
 * - `open`: open a new connection for it;
 * - `wait`: its share is in use or the fleet is at capacity; wait for a release.
 */
export type Admission = 'use-idle' | 'await-opening' | 'open' | 'wait';

/** Most of a fleet's cap one reserve may take: a third (floor), so reserves scale down with small caps. */
export const RESERVE_SHARE = 1 / 3;

/**
 * The reserves in force at capacity `cap`: each configured reserve, but at most a third of the
 * cap, so a small cap (a shaped site's 5 connections) is not mostly held back from bulk and
 * transactional mail; critical keeps at least one connection of its own whenever `cap` ≥ 2
 * (and its configured reserve is not 0).
 */
export function reserveAt(cap: number, reserve: Reserve): Reserve {
  const most = Math.floor(cap * RESERVE_SHARE);
  const critical = Math.min(reserve.critical, cap >= 2 ? Math.max(1, most) : 0);
  return { critical: Math.max(0, critical), transactional: Math.max(0, Math.min(reserve.transactional, most)) };
}

/** Most connections priority `p` and every priority below it may hold together. */
export function shareLimit(cap: number, reserve: Reserve, p: Priority): number {
  const r = reserveAt(cap, reserve);
  const above = p === 'critical' ? 0 : p === 'transactional' ? r.critical : r.critical + r.transactional;
  return Math.max(1, cap - above);
}

function busyAtOrBelow(busy: Record<Priority, number>, p: Priority): number {
  let n = 0;
  for (let i = PRIORITY_ORDER.indexOf(p); i < PRIORITY_ORDER.length; i++) n += busy[PRIORITY_ORDER[i]];
  return n;
}

/** True when one more connection for `p` keeps every share (p's and those above it) within its limit. */
export function withinShare(s: Pick<AdmissionState, 'cap' | 'reserve' | 'busy'>, p: Priority): boolean {
  for (let i = 0; i <= PRIORITY_ORDER.indexOf(p); i++) {
    const q = PRIORITY_ORDER[i];
    if (busyAtOrBelow(s.busy, q) + 1 > shareLimit(s.cap, s.reserve, q)) return false;
  }
  return true;
}

/** Decides what a request of priority `p` gets from a fleet in state `s`. */
export function admit(s: AdmissionState, p: Priority): Admission {
  if (!withinShare(s, p)) return 'wait';
  if (s.idle > 0) return 'use-idle';
  if (s.opening > 0) return 'await-opening';
  if (s.total < s.cap && s.canOpen !== false) return 'open';
  return 'wait';
}

/** The state after `decision` was taken for `p` (the pump applies decisions one request at a time). */
export function afterAdmission(s: AdmissionState, p: Priority, decision: Admission): AdmissionState {
  if (decision === 'wait') return s;
  const busy = { ...s.busy, [p]: s.busy[p] + 1 };
  if (decision === 'use-idle') return { ...s, busy, idle: s.idle - 1 };
  if (decision === 'await-opening') return { ...s, busy, opening: s.opening - 1 };
  return { ...s, busy, total: s.total + 1 };
}
