/**
 * A kafkajs partition assigner that gives partition p of every dispatch topic to the same
 * process in every priority's consumer group. Each priority is its own group (isolation), and
 * kafkajs's default round-robin assigns each group on its own, so partition p of
 * email.dispatch.bulk and of email.dispatch.transactional could land in different dispatcher
 * processes: a site keyed to p then had two owners, each holding the site's whole connection
 * and rate limit. Here every member publishes a stable process id in its userData; the leader
 * sorts the members by it and gives partition p to member[p mod n]. The groups have the same
 * members (every dispatcher process joins every group) and the same sort, so they agree.
 *
 * The transient window: the groups rebalance one after the other, not at once. While a process
 * joins or leaves, one group may already use the new membership and another still the old one,
 * so for that window (one rebalance, a session timeout at most when a process dies) a
 * partition's priorities can have two owners and a site may see up to twice its limit. Pure
 * assignment (`alignedAssignment`), thin kafkajs glue.
 */
import { AssignerProtocol, type PartitionAssigner } from 'kafkajs';

export const ALIGNED_ASSIGNER = 'PostlineProcessAligned';
const VERSION = 1;

export interface AlignedMember {
  memberId: string;
  /** The process id the member published (members without one sort after by member id). */
  processId: string;
}

/**
 * Partition p of each topic → the member at p mod n, members sorted by process id (then member
 * id). Returns memberId → topic → partitions. Several members of one process (not done by the
 * dispatcher, but possible) are told apart by member id.
 */
export function alignedAssignment(members: AlignedMember[], partitions: Record<string, number[]>): Map<string, Record<string, number[]>> {
  const sorted = [...members].sort((a, b) => cmp(a.processId, b.processId) || cmp(a.memberId, b.memberId));
  const out = new Map<string, Record<string, number[]>>(sorted.map((m) => [m.memberId, {}]));
  if (sorted.length === 0) return out;
  for (const [topic, ids] of Object.entries(partitions)) {
    for (const p of [...ids].sort((a, b) => a - b)) {
      const owner = out.get(sorted[p % sorted.length].memberId)!;
      (owner[topic] ??= []).push(p);
    }
  }
  return out;
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** The assigner for `consumer({ partitionAssigners: [processAlignedAssigner(processId)] })`. */
export function processAlignedAssigner(processId: string): PartitionAssigner {
  const userData = Buffer.from(processId, 'utf8');
  return ({ cluster }) => ({
    name: ALIGNED_ASSIGNER,
    version: VERSION,
    async assign({ members, topics }) {
      const aligned = members.map((m) => {
        const meta = m.memberMetadata.length > 0 ? AssignerProtocol.MemberMetadata.decode(m.memberMetadata) : null;
        return { memberId: m.memberId, processId: meta?.userData?.toString('utf8') ?? '' };
      });
      const partitions: Record<string, number[]> = {};
      for (const topic of topics) partitions[topic] = cluster.findTopicPartitionMetadata(topic).map((p) => p.partitionId);
      const plan = alignedAssignment(aligned, partitions);
      return [...plan].map(([memberId, assignment]) => ({
        memberId,
        memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: VERSION, assignment, userData: Buffer.alloc(0) }),
      }));
    },
    protocol({ topics }) {
      return { name: ALIGNED_ASSIGNER, metadata: AssignerProtocol.MemberMetadata.encode({ version: VERSION, topics, userData }) };
    },
  });
}
