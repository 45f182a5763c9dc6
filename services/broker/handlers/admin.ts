/** Topic administration and producer ids. */
import { ApiKey } from '../protocol/apis.js';
import { ErrorCode } from '../protocol/error-codes.js';
import { TopicError } from '../log/log-manager.js';
import { InvalidConfigError } from '../log/topic-config.js';
import type { BrokerContext } from '../context.js';
import type { Handler } from '../server.js';
import type { Message } from '../protocol/schema.js';
import { committedOffsetKeys } from './offsets.js';
import { addAssignmentError, createAssignmentError } from './replica-assignment.js';

const PRODUCER_ID_BLOCK = 1000;
const PRODUCER_ID_KEY = 'producerIdBlockEnd';

export function adminHandlers(b: BrokerContext): Array<[number, Handler]> {
  /** A per-topic error for the response; an unexpected one (disk full, out of file handles) is logged. */
  const topicError = (err: unknown, topic: string): { errorCode: number; errorMessage: string } => {
    if (err instanceof TopicError) return { errorCode: ErrorCode[err.errorName], errorMessage: err.message };
    if (err instanceof InvalidConfigError) return { errorCode: ErrorCode.INVALID_CONFIG, errorMessage: err.message };
    b.logger.error({ err, topic }, 'topic operation failed');
    return { errorCode: ErrorCode.UNKNOWN_SERVER_ERROR, errorMessage: (err as Error).message };
  };

  const createTopics: Handler = (_ctx, req) => ({
    throttleTimeMs: 0,
    topics: (req.topics as Message[]).map((t) => {
      const configs = Object.fromEntries((t.configs as Message[]).map((c) => [c.name, c.value]));
      const assigned = (t.assignments as Message[]).length;
      const partitions = t.numPartitions === -1 ? (assigned || b.options.defaultPartitions) : t.numPartitions;
      if (t.replicationFactor > 1) {
        return { name: t.name, errorCode: ErrorCode.INVALID_REPLICATION_FACTOR, errorMessage: `replication factor ${t.replicationFactor} is larger than the 1 available broker` };
      }
      const badAssignment = assigned > 0 ? createAssignmentError(t.assignments as Array<{ partitionIndex: number; brokerIds: number[] }>, b.nodeId) : null;
      if (badAssignment) return { name: t.name, errorCode: ErrorCode.INVALID_REPLICA_ASSIGNMENT, errorMessage: badAssignment };
      try {
        if (req.validateOnly) b.logs.validate(t.name, partitions, configs);
        else {
          b.logs.create(t.name, partitions, configs);
          b.logger.info({ topic: t.name, partitions, configs }, 'topic created');
        }
        return { name: t.name, errorCode: 0, errorMessage: null };
      } catch (err) {
        return { name: t.name, ...topicError(err, t.name) };
      }
    }),
  });

  const deleteTopics: Handler = async (_ctx, req) => {
    const deleted = new Set<string>();
    const responses = (req.topicNames as string[]).map((name) => {
      try {
        b.logs.delete(name);
        deleted.add(name);
        void b.metrics.forgetTopic(name);
        b.logger.info({ topic: name }, 'topic deleted');
        return { name, errorCode: 0 };
      } catch (err) {
        return { name, errorCode: topicError(err, name).errorCode };
      }
    });
    // Committed offsets go with the topic: a topic re-created under the same name must not
    // hand its consumers positions from the old log.
    const stale = committedOffsetKeys(b, deleted);
    if (stale.length > 0) {
      b.store.set(stale.map((k) => [k, null]));
      await b.commit.durable();
    }
    return { throttleTimeMs: 0, responses };
  };

  const createPartitions: Handler = (_ctx, req) => ({
    throttleTimeMs: 0,
    results: (req.topics as Message[]).map((t) => {
      const current = b.logs.get(t.name)?.partitions.length;
      const lists = (t.assignments as Message[] | null)?.map((a) => a.brokerIds as number[]);
      const badAssignment = lists && current !== undefined && t.count > current ? addAssignmentError(lists, t.count - current, b.nodeId) : null;
      if (badAssignment) return { name: t.name, errorCode: ErrorCode.INVALID_REPLICA_ASSIGNMENT, errorMessage: badAssignment };
      try {
        b.logs.addPartitions(t.name, t.count, req.validateOnly);
        return { name: t.name, errorCode: 0, errorMessage: null };
      } catch (err) {
        return { name: t.name, ...topicError(err, t.name) };
      }
    }),
  });

  // Producer ids are handed out from blocks whose end is stored durably before use, so an id
  // is never reused after a restart.
  let nextProducerId = b.store.get<number>(PRODUCER_ID_KEY) ?? 0;
  let durableEnd = nextProducerId;
  const initProducerId: Handler = async (_ctx, req) => {
    if (req.transactionalId) {
      return { throttleTimeMs: 0, errorCode: ErrorCode.UNSUPPORTED_VERSION, producerId: -1, producerEpoch: -1 };
    }
    const id = nextProducerId++;
    if (id >= (b.store.get<number>(PRODUCER_ID_KEY) ?? 0)) b.store.set([[PRODUCER_ID_KEY, id + PRODUCER_ID_BLOCK]]);
    if (id >= durableEnd) {
      await b.commit.durable();
      durableEnd = Math.max(durableEnd, b.store.get<number>(PRODUCER_ID_KEY) ?? 0);
    }
    return { throttleTimeMs: 0, errorCode: 0, producerId: id, producerEpoch: 0 };
  };

  return [
    [ApiKey.CreateTopics, createTopics],
    [ApiKey.DeleteTopics, deleteTopics],
    [ApiKey.CreatePartitions, createPartitions],
    [ApiKey.InitProducerId, initProducerId],
  ];
}
