/**
 * ListOffsets (earliest, latest, by timestamp; v0's offsets-before-a-time too), OffsetCommit and OffsetFetch. Committed offsets
 * live in the broker's state store; a commit is answered only after it is fsynced, so a consumer
 * that saw its commit succeed never re-reads those records after a broker crash.
 */
import { ApiKey } from '../protocol/apis.js';
import { ErrorCode } from '../protocol/error-codes.js';
import type { BrokerContext } from '../context.js';
import type { Handler } from '../server.js';
import type { Message } from '../protocol/schema.js';
import { legacyOffsetsBefore } from '../log/legacy-offsets.js';

const SEP = '\u0000';
const MAX_COMMIT_METADATA = 4096;
export const offsetKey = (group: string, topic: string, partition: number): string => `o${SEP}${group}${SEP}${topic}${SEP}${partition}`;
export const groupKey = (group: string): string => `g${SEP}${group}`;

export interface CommittedOffset {
  offset: number;
  metadata: string | null;
  at: number;
}

/** Every committed offset of a group, as [topic, partition, value]. */
export function committedOffsets(b: BrokerContext, group: string): Array<[string, number, CommittedOffset]> {
  const out: Array<[string, number, CommittedOffset]> = [];
  for (const [k, v] of b.store.entries<CommittedOffset>(`o${SEP}${group}${SEP}`)) {
    const [, , topic, partition] = k.split(SEP);
    out.push([topic, Number(partition), v]);
  }
  return out;
}

/** Each group's newest commit time, from one pass over the committed offsets. */
export function lastCommitTimes(b: BrokerContext): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, v] of b.store.entries<CommittedOffset>(`o${SEP}`)) {
    const group = k.split(SEP)[1];
    out.set(group, Math.max(out.get(group) ?? -Infinity, v.at));
  }
  return out;
}

/** Store keys of every group's committed offsets for any of `topics`. */
export function committedOffsetKeys(b: BrokerContext, topics: Set<string>): string[] {
  const out: string[] = [];
  if (topics.size === 0) return out;
  for (const [k] of b.store.entries<CommittedOffset>(`o${SEP}`)) {
    if (topics.has(k.split(SEP)[2])) out.push(k);
  }
  return out;
}

export function offsetHandlers(b: BrokerContext): Array<[number, Handler]> {
  const listOffsets: Handler = (ctx, req) => ({
    throttleTimeMs: 0,
    topics: (req.topics as Message[]).map((t) => ({
      name: t.name,
      partitions: (t.partitions as Message[]).map((p) => {
        const log = b.logs.partition(t.name, p.partitionIndex);
        if (!log) return { partitionIndex: p.partitionIndex, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, timestamp: -1, offset: -1, oldStyleOffsets: [] };
        if (ctx.apiVersion === 0) {
          const shape = {
            segments: log.segments.map((s) => ({ baseOffset: s.baseOffset, lastModified: s.maxTimestamp >= 0 ? s.maxTimestamp : s.createdAt, size: s.size })),
            logStartOffset: log.logStartOffset,
            endOffset: log.highWatermark,
            now: Date.now(),
          };
          return { partitionIndex: p.partitionIndex, errorCode: 0, oldStyleOffsets: legacyOffsetsBefore(shape, p.timestamp, p.maxNumOffsets) };
        }
        if (p.timestamp === -1) return { partitionIndex: p.partitionIndex, errorCode: 0, timestamp: -1, offset: log.highWatermark };
        if (p.timestamp === -2) return { partitionIndex: p.partitionIndex, errorCode: 0, timestamp: -1, offset: log.logStartOffset };
        const hit = log.offsetForTimestamp(p.timestamp);
        return { partitionIndex: p.partitionIndex, errorCode: 0, timestamp: hit?.timestamp ?? -1, offset: hit?.offset ?? -1 };
      }),
    })),
  });

  const offsetCommit: Handler = async (_ctx, req) => {
    const verdict = b.groups.checkCommit(req.groupId, req.memberId, req.generationId);
    const groupError = verdict === 'NONE' ? 0 : ErrorCode[verdict];
    const changes: Array<[string, unknown]> = [];
    const now = Date.now();
    const topics = (req.topics as Message[]).map((t) => ({
      name: t.name,
      partitions: (t.partitions as Message[]).map((p) => {
        let errorCode = groupError;
        if (!errorCode && !b.logs.partition(t.name, p.partitionIndex)) errorCode = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
        // Kafka's offset.metadata.max.bytes: the state store keeps every committed offset in memory.
        if (!errorCode && p.committedMetadata && Buffer.byteLength(p.committedMetadata) > MAX_COMMIT_METADATA) errorCode = ErrorCode.OFFSET_METADATA_TOO_LARGE;
        if (!errorCode) {
          const value: CommittedOffset = { offset: p.committedOffset, metadata: p.committedMetadata, at: now };
          changes.push([offsetKey(req.groupId, t.name, p.partitionIndex), value]);
        }
        return { partitionIndex: p.partitionIndex, errorCode };
      }),
    }));
    if (changes.length > 0) {
      const g = b.groups.ensureGroup(req.groupId);
      changes.push([groupKey(req.groupId), { protocolType: g.protocolType || 'consumer', generation: g.generation, at: now }]);
      b.store.set(changes);
      // Only the journal holds offsets: the commit never waits for partition logs' fsyncs.
      await b.commit.durableFor([b.store]);
    }
    return { throttleTimeMs: 0, topics };
  };

  const offsetFetch: Handler = (_ctx, req) => {
    const requested = req.topics as Message[] | null;
    const topics: Message[] = [];
    if (requested === null) {
      const byTopic = new Map<string, Message[]>();
      for (const [topic, partition, v] of committedOffsets(b, req.groupId)) {
        const list = byTopic.get(topic) ?? [];
        list.push({ partitionIndex: partition, committedOffset: v.offset, metadata: v.metadata ?? '', errorCode: 0 });
        byTopic.set(topic, list);
      }
      for (const [name, partitions] of byTopic) topics.push({ name, partitions });
    } else {
      for (const t of requested) {
        topics.push({
          name: t.name,
          partitions: (t.partitionIndexes as number[]).map((p) => {
            const v = b.store.get<CommittedOffset>(offsetKey(req.groupId, t.name, p));
            return { partitionIndex: p, committedOffset: v?.offset ?? -1, metadata: v?.metadata ?? '', errorCode: 0 };
          }),
        });
      }
    }
    return { throttleTimeMs: 0, topics, errorCode: 0 };
  };

  return [
    [ApiKey.ListOffsets, listOffsets],
    [ApiKey.OffsetCommit, offsetCommit],
    [ApiKey.OffsetFetch, offsetFetch],
  ];
}
