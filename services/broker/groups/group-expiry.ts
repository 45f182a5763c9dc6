/**
 * When an unused consumer group goes away, as Kafka decides it (`offsets.retention.minutes`,
 * KIP-211): a group with no members whose last activity (becoming empty, or its newest offset
 * commit) is older than the retention is deleted with its committed offsets. A group with
 * members never expires, however old its commits. Pure.
 */
import type { GroupState } from './group-coordinator.js';

export interface GroupActivity {
  members: number;
  state: GroupState;
  /** When the group last became empty (or was created, or restored after a restart). */
  emptySince: number;
  /** The newest committed offset's time, or null when it has none. */
  lastCommitAt: number | null;
}

export function groupExpired(g: GroupActivity, now: number, retentionMs: number): boolean {
  if (g.members > 0 || g.state !== 'Empty') return false;
  return now - Math.max(g.emptySince, g.lastCommitAt ?? -Infinity) > retentionMs;
}
