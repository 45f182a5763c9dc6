/** ApiVersions, Metadata and FindCoordinator: how clients discover this single node. */
import { ApiKey } from '../protocol/apis.js';
import { ErrorCode } from '../protocol/error-codes.js';
import { topicNameError, type Topic } from '../log/log-manager.js';
import type { BrokerContext } from '../context.js';
import type { Handler } from '../server.js';
import type { Message } from '../protocol/schema.js';

export function metadataHandlers(b: BrokerContext, apiVersionsBody: () => Message): Array<[number, Handler]> {
  const describe = (t: Topic): Message => ({
    errorCode: 0,
    name: t.name,
    isInternal: false,
    partitions: t.partitions.map((p) => ({
      errorCode: 0,
      partitionIndex: p.partition,
      leaderId: b.nodeId,
      replicaNodes: [b.nodeId],
      isrNodes: [b.nodeId],
      offlineReplicas: [],
    })),
  });

  const metadata: Handler = (ctx, req) => {
    const requested = req.topics as Message[] | null;
    // v4+ carries the client's wish; before v4 clients expect the broker default.
    const allowCreate = ctx.apiVersion >= 4 ? Boolean(req.allowAutoTopicCreation) : true;
    const topics = requested === null
      ? [...b.logs.topics.values()].map(describe)
      : requested.map(({ name }: Message) => {
          const existing = b.logs.get(name);
          if (existing) return describe(existing);
          if (topicNameError(name)) return { errorCode: ErrorCode.INVALID_TOPIC_EXCEPTION, name, isInternal: false, partitions: [] };
          const created = allowCreate ? b.topicOrCreate(name) : undefined;
          return created ? describe(created) : { errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, name, isInternal: false, partitions: [] };
        });
    return {
      throttleTimeMs: 0,
      brokers: [{ nodeId: b.nodeId, host: b.advertised.host, port: b.advertised.port, rack: null }],
      clusterId: b.clusterId,
      controllerId: b.nodeId,
      topics,
    };
  };

  const findCoordinator: Handler = () => ({
    throttleTimeMs: 0,
    errorCode: 0,
    errorMessage: null,
    nodeId: b.nodeId,
    host: b.advertised.host,
    port: b.advertised.port,
  });

  return [
    [ApiKey.ApiVersions, () => apiVersionsBody()],
    [ApiKey.Metadata, metadata],
    [ApiKey.FindCoordinator, findCoordinator],
  ];
}
