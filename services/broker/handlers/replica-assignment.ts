/**
 * Manual replica assignments (CreateTopics `assignments`, CreatePartitions `assignments`) checked
 * as Kafka checks them. On a single node the only valid replica list is this node, once; naming a
 * broker that does not exist is INVALID_REPLICA_ASSIGNMENT, never silently ignored.
 */

/** Why a list of replica lists is not valid for `nodeId`, or null when it is. */
export function replicaListsError(lists: number[][], nodeId: number): string | null {
  for (const [i, brokers] of lists.entries()) {
    if (brokers.length === 0) return `replica list ${i} is empty`;
    if (new Set(brokers).size !== brokers.length) return `replica list ${i} names a broker twice (${brokers.join(',')})`;
    const unknown = brokers.filter((id) => id !== nodeId);
    if (unknown.length > 0) return `unknown broker(s) ${unknown.join(',')} in replica assignment (the only broker is ${nodeId})`;
  }
  return null;
}

/** CreateTopics: partition indexes must be 0..n-1, each once, and every replica list valid. */
export function createAssignmentError(assignments: Array<{ partitionIndex: number; brokerIds: number[] }>, nodeId: number): string | null {
  const indexes = assignments.map((a) => a.partitionIndex).sort((x, y) => x - y);
  if (indexes.some((p, i) => p !== i)) return `partitions in a replica assignment must be 0..${assignments.length - 1}, each once (got ${indexes.join(',')})`;
  return replicaListsError(assignments.map((a) => a.brokerIds), nodeId);
}

/** CreatePartitions: one replica list per new partition, each valid. */
export function addAssignmentError(assignments: number[][], newPartitions: number, nodeId: number): string | null {
  if (assignments.length !== newPartitions) return `${assignments.length} replica lists given for ${newPartitions} new partitions`;
  return replicaListsError(assignments, nodeId);
}
