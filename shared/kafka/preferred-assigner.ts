/**
 * A partition assigner that gives every partition to the group's *preferred* members while any
 * is present, round-robin among them; without one it is plain round-robin over all members. A
 * member says it is preferred in its subscription's user data.
 *
 * `postline start` uses it for the renderer's groups: the second renderer it starts under a
 * backlog (services/embedded/render-helper.ts) is preferred, so it takes the rendering over
 * from the co-hosted stages process, whose event loop then serves the API and the dispatcher;
 * when it leaves, the co-hosted renderer gets every partition back at the rebalance.
 *
 * Members list it before kafkajs's round-robin assigner: the broker picks the first protocol
 * every member supports (Kafka's rule), so a group with a member that does not know this one
 * (a rolling upgrade) stays on round-robin.
 */
import { AssignerProtocol, PartitionAssigners, type PartitionAssigner } from 'kafkajs';

export const PREFERRED_ASSIGNER = 'PostlinePreferred';
const PREFERRED = Buffer.from('preferred');

/** Partitions by topic for one member, as kafkajs's assigners return them. */
type Assignment = Record<string, number[]>;

/** `topic → partitions` for each member id: all of them to the preferred members if any (round-robin), else to all. */
export function assignPreferred(members: Array<{ memberId: string; preferred: boolean }>, partitions: Array<{ topic: string; partition: number }>): Map<string, Assignment> {
  const preferred = members.filter((m) => m.preferred);
  const eligible = (preferred.length > 0 ? preferred : members).map((m) => m.memberId).sort();
  const out = new Map<string, Assignment>(members.map((m) => [m.memberId, {}]));
  partitions.forEach(({ topic, partition }, i) => {
    const a = out.get(eligible[i % eligible.length])!;
    (a[topic] ??= []).push(partition);
  });
  return out;
}

/** The assigner; `preferred` is what this member says of itself. */
export function preferredAssigner(preferred: boolean): PartitionAssigner {
  return ({ cluster }) => ({
    name: PREFERRED_ASSIGNER,
    version: 0,
    async assign({ members, topics }) {
      const decoded = members.map((m) => ({ memberId: m.memberId, preferred: AssignerProtocol.MemberMetadata.decode(m.memberMetadata)?.userData?.equals(PREFERRED) === true }));
      const partitions = topics.flatMap((topic) => cluster.findTopicPartitionMetadata(topic).map((p) => ({ topic, partition: p.partitionId })));
      return [...assignPreferred(decoded, partitions)].map(([memberId, assignment]) => ({
        memberId,
        memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: 0, assignment, userData: Buffer.alloc(0) }),
      }));
    },
    protocol({ topics }) {
      return { name: PREFERRED_ASSIGNER, metadata: AssignerProtocol.MemberMetadata.encode({ version: 0, topics, userData: preferred ? PREFERRED : Buffer.alloc(0) }) };
    },
  });
}

/** What a consumer of such a group lists: this assigner first, kafkajs's round-robin after. */
export function preferringAssigners(preferred: boolean): PartitionAssigner[] {
  return [preferredAssigner(preferred), PartitionAssigners.roundRobin];
}
