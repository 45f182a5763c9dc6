/**
 * DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for topics (broker configs are listed
 * read-only), and DeleteRecords. AlterConfigs replaces a topic's whole setting list as Kafka's does
 * (what it does not name falls back to the broker default); IncrementalAlterConfigs (what
 * `kafka-configs.sh` and the Java admin client use) changes only the settings it names. Either is
 * persisted before the answer and applied at once; DeleteRecords moves the log start offset durably.
 */
import { ApiKey } from '../protocol/apis.js';
import { ErrorCode } from '../protocol/error-codes.js';
import { TopicError } from '../log/log-manager.js';
import { InvalidConfigError, TOPIC_SETTINGS, applyConfigOps, settingValue } from '../log/topic-config.js';
import { BROKER_SYNONYM, brokerConfigEntries, topicConfigEntries } from '../log/config-entries.js';
import type { BrokerContext } from '../context.js';
import type { Handler } from '../server.js';
import type { Message } from '../protocol/schema.js';

/** Kafka's `ConfigResource.Type` ids. */
const ResourceType = { TOPIC: 2, BROKER: 4 } as const;

interface ResourceError {
  errorCode: number;
  errorMessage: string | null;
}

const ok: ResourceError = { errorCode: 0, errorMessage: null };

export function configHandlers(b: BrokerContext): Array<[number, Handler]> {
  const brokerSettings = (): Record<string, string> => ({
    'broker.id': String(b.nodeId),
    'auto.create.topics.enable': String(b.options.autoCreateTopics),
    'num.partitions': String(b.options.defaultPartitions),
    'default.replication.factor': '1',
    'log.dirs': b.options.dataDir,
    'offsets.retention.minutes': String(b.options.offsetsRetentionMinutes),
    'group.min.session.timeout.ms': String(b.options.minSessionTimeoutMs),
    'group.max.session.timeout.ms': String(b.options.maxSessionTimeoutMs),
    'group.initial.rebalance.delay.ms': String(b.options.initialRebalanceDelayMs),
    ...Object.fromEntries(TOPIC_SETTINGS.map((n) => [BROKER_SYNONYM[n], settingValue(b.logs.defaults, n)])),
  });
  const isThisBroker = (name: string): boolean => name === '' || name === String(b.nodeId);
  const unknownResource = (r: Message): ResourceError => ({
    errorCode: ErrorCode.INVALID_REQUEST,
    errorMessage: r.resourceType === ResourceType.BROKER ? `broker ${r.resourceName} is not this broker (${b.nodeId})` : `resource type ${r.resourceType} is not supported`,
  });

  const describeConfigs: Handler = (_ctx, req) => ({
    throttleTimeMs: 0,
    results: (req.resources as Message[]).map((r) => {
      const head = { resourceType: r.resourceType, resourceName: r.resourceName };
      const keys = r.configurationKeys as string[] | null;
      const synonyms = Boolean(req.includeSynonyms);
      if (r.resourceType === ResourceType.TOPIC) {
        const topic = b.logs.get(r.resourceName);
        if (!topic) return { ...head, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: `topic "${r.resourceName}" does not exist`, configs: [] };
        return { ...head, ...ok, configs: topicConfigEntries(topic.config, b.logs.defaults, keys, synonyms) };
      }
      if (r.resourceType === ResourceType.BROKER && isThisBroker(r.resourceName)) {
        return { ...head, ...ok, configs: brokerConfigEntries(brokerSettings(), keys, synonyms) };
      }
      return { ...head, ...unknownResource(r), configs: [] };
    }),
  });

  /** AlterConfigs (`incremental` false: the configs are the new setting list) or IncrementalAlterConfigs. */
  const alterOne = (r: Message, validateOnly: boolean, incremental: boolean): ResourceError => {
    if (r.resourceType === ResourceType.BROKER && isThisBroker(r.resourceName)) {
      return { errorCode: ErrorCode.INVALID_REQUEST, errorMessage: 'broker configs are read-only (set them when starting the broker)' };
    }
    if (r.resourceType !== ResourceType.TOPIC) return unknownResource(r);
    const configs = r.configs as Message[];
    if (incremental && new Set(configs.map((c) => c.name)).size !== configs.length) {
      return { errorCode: ErrorCode.INVALID_REQUEST, errorMessage: 'a setting may appear once per resource' };
    }
    try {
      const topic = b.logs.get(r.resourceName);
      const settings = incremental && topic
        ? applyConfigOps(topic.config, configs.map((c) => ({ name: c.name, op: c.configOperation, value: c.value })))
        : Object.fromEntries(configs.map((c) => [c.name, c.value]));
      b.logs.alterConfig(r.resourceName, settings, validateOnly);
      if (!validateOnly) b.logger.info({ topic: r.resourceName, configs: settings }, 'topic config altered');
      return ok;
    } catch (err) {
      if (err instanceof TopicError) return { errorCode: ErrorCode[err.errorName], errorMessage: err.message };
      if (err instanceof InvalidConfigError) return { errorCode: ErrorCode.INVALID_CONFIG, errorMessage: err.message };
      b.logger.error({ err, topic: r.resourceName }, 'altering a topic config failed');
      return { errorCode: ErrorCode.UNKNOWN_SERVER_ERROR, errorMessage: (err as Error).message };
    }
  };

  const alter =
    (incremental: boolean): Handler =>
    (_ctx, req) => ({
      throttleTimeMs: 0,
      responses: (req.resources as Message[]).map((r) => ({ resourceType: r.resourceType, resourceName: r.resourceName, ...alterOne(r, Boolean(req.validateOnly), incremental) })),
    });

  const deleteRecords: Handler = (_ctx, req) => ({
    throttleTimeMs: 0,
    topics: (req.topics as Message[]).map((t) => ({
      name: t.name,
      partitions: (t.partitions as Message[]).map((p) => {
        const out = { partitionIndex: p.partitionIndex, lowWatermark: -1, errorCode: 0 };
        const log = b.logs.partition(t.name, p.partitionIndex);
        if (!log) return { ...out, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION };
        // -1 means "up to the high watermark", as in Kafka.
        const offset = p.offset === -1 ? log.highWatermark : p.offset;
        if (offset < 0 || offset > log.highWatermark) return { ...out, errorCode: ErrorCode.OFFSET_OUT_OF_RANGE };
        try {
          const before = log.logStartOffset;
          const lowWatermark = log.deleteRecordsBefore(offset);
          if (lowWatermark !== before) b.logger.info({ topic: t.name, partition: p.partitionIndex, logStartOffset: lowWatermark }, 'records deleted');
          return { ...out, lowWatermark };
        } catch (err) {
          b.logger.error({ err, topic: t.name, partition: p.partitionIndex }, 'deleting records failed');
          return { ...out, errorCode: ErrorCode.UNKNOWN_SERVER_ERROR };
        }
      }),
    })),
  });

  return [
    [ApiKey.DescribeConfigs, describeConfigs],
    [ApiKey.AlterConfigs, alter(false)],
    [ApiKey.IncrementalAlterConfigs, alter(true)],
    [ApiKey.DeleteRecords, deleteRecords],
  ];
}
