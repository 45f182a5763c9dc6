/**
 * The Kafka APIs this broker serves, each with its request and response schema for every
 * version it advertises. Field names follow Kafka's JSON message specs (camelCase), so a field
 * can be checked against `clients/src/main/resources/common/message/*.json` by name.
 *
 * The advertised ranges are the ones both kafkajs 2.2.4 and librdkafka 2.x accept: librdkafka
 * enables a feature only when the ranges overlap its own, kafkajs picks min(its max, ours).
 * Produce and Fetch start at v0 as in Kafka 2.x-3.x: librdkafka enables gzip and snappy
 * ("MsgVer1") only when the broker lists Produce and Fetch v2, and sends uncompressed batches
 * otherwise. Old message formats are not converted (see the handlers).
 * None of them is a "flexible" (tagged-field) version, so one header format serves them all.
 */
import { array, field, type Schema } from './schema.js';

export const ApiKey = {
  Produce: 0,
  Fetch: 1,
  ListOffsets: 2,
  Metadata: 3,
  OffsetCommit: 8,
  OffsetFetch: 9,
  FindCoordinator: 10,
  JoinGroup: 11,
  Heartbeat: 12,
  LeaveGroup: 13,
  SyncGroup: 14,
  DescribeGroups: 15,
  ListGroups: 16,
  ApiVersions: 18,
  CreateTopics: 19,
  DeleteTopics: 20,
  DeleteRecords: 21,
  InitProducerId: 22,
  DescribeConfigs: 32,
  AlterConfigs: 33,
  CreatePartitions: 37,
  DeleteGroups: 42,
  IncrementalAlterConfigs: 44,
} as const;

export interface ApiSpec {
  key: number;
  name: string;
  min: number;
  max: number;
  request: Schema;
  response: Schema;
}

const throttle = (spec: string) => field('throttleTimeMs', 'int32', spec);

export const APIS: ApiSpec[] = [
  {
    key: ApiKey.Produce,
    name: 'Produce',
    min: 0,
    max: 7,
    request: [
      field('transactionalId', 'nstring', '3+'),
      field('acks', 'int16'),
      field('timeoutMs', 'int32'),
      array('topicData', [
        field('name', 'string'),
        array('partitionData', [field('index', 'int32'), field('records', 'nbytes')]),
      ]),
    ],
    response: [
      array('responses', [
        field('name', 'string'),
        array('partitionResponses', [
          field('index', 'int32'),
          field('errorCode', 'int16'),
          field('baseOffset', 'int64'),
          field('logAppendTimeMs', 'int64', '2+', { fallback: -1 }),
          field('logStartOffset', 'int64', '5+', { fallback: -1 }),
        ]),
      ]),
      throttle('1+'),
    ],
  },
  {
    key: ApiKey.Fetch,
    name: 'Fetch',
    min: 0,
    max: 11,
    request: [
      field('replicaId', 'int32'),
      field('maxWaitMs', 'int32'),
      field('minBytes', 'int32'),
      field('maxBytes', 'int32', '3+', { fallback: 0x7fffffff }),
      field('isolationLevel', 'int8', '4+'),
      field('sessionId', 'int32', '7+'),
      field('sessionEpoch', 'int32', '7+', { fallback: -1 }),
      array('topics', [
        field('topic', 'string'),
        array('partitions', [
          field('partition', 'int32'),
          field('currentLeaderEpoch', 'int32', '9+', { fallback: -1 }),
          field('fetchOffset', 'int64'),
          field('logStartOffset', 'int64', '5+', { fallback: -1 }),
          field('partitionMaxBytes', 'int32'),
        ]),
      ]),
      array('forgottenTopicsData', [field('topic', 'string'), array('partitions', 'int32')], '7+'),
      field('rackId', 'string', '11+'),
    ],
    response: [
      throttle('1+'),
      field('errorCode', 'int16', '7+'),
      field('sessionId', 'int32', '7+'),
      array('responses', [
        field('topic', 'string'),
        array('partitions', [
          field('partitionIndex', 'int32'),
          field('errorCode', 'int16'),
          field('highWatermark', 'int64'),
          field('lastStableOffset', 'int64', '4+', { fallback: -1 }),
          field('logStartOffset', 'int64', '5+', { fallback: -1 }),
          array('abortedTransactions', [field('producerId', 'int64'), field('firstOffset', 'int64')], '4+', {
            nullable: '4+',
            fallback: null,
          }),
          field('preferredReadReplica', 'int32', '11+', { fallback: -1 }),
          field('records', 'nbytes'),
        ]),
      ]),
    ],
  },
  {
    key: ApiKey.ListOffsets,
    name: 'ListOffsets',
    min: 0,
    max: 3,
    request: [
      field('replicaId', 'int32'),
      field('isolationLevel', 'int8', '2+'),
      array('topics', [
        field('name', 'string'),
        array('partitions', [field('partitionIndex', 'int32'), field('timestamp', 'int64'), field('maxNumOffsets', 'int32', '0', { fallback: 1 })]),
      ]),
    ],
    response: [
      throttle('2+'),
      array('topics', [
        field('name', 'string'),
        array('partitions', [
          field('partitionIndex', 'int32'),
          field('errorCode', 'int16'),
          array('oldStyleOffsets', 'int64', '0'),
          field('timestamp', 'int64', '1+', { fallback: -1 }),
          field('offset', 'int64', '1+', { fallback: -1 }),
        ]),
      ]),
    ],
  },
  {
    key: ApiKey.Metadata,
    name: 'Metadata',
    min: 1,
    max: 6,
    request: [array('topics', [field('name', 'string')], '0+', { nullable: '1+' }), field('allowAutoTopicCreation', 'bool', '4+', { fallback: true })],
    response: [
      throttle('3+'),
      array('brokers', [
        field('nodeId', 'int32'),
        field('host', 'string'),
        field('port', 'int32'),
        field('rack', 'nstring', '1+'),
      ]),
      field('clusterId', 'nstring', '2+'),
      field('controllerId', 'int32', '1+'),
      array('topics', [
        field('errorCode', 'int16'),
        field('name', 'string'),
        field('isInternal', 'bool', '1+'),
        array('partitions', [
          field('errorCode', 'int16'),
          field('partitionIndex', 'int32'),
          field('leaderId', 'int32'),
          array('replicaNodes', 'int32'),
          array('isrNodes', 'int32'),
          array('offlineReplicas', 'int32', '5+'),
        ]),
      ]),
    ],
  },
  {
    key: ApiKey.OffsetCommit,
    name: 'OffsetCommit',
    min: 2,
    max: 5,
    request: [
      field('groupId', 'string'),
      field('generationId', 'int32', '1+', { fallback: -1 }),
      field('memberId', 'string', '1+'),
      field('retentionTimeMs', 'int64', '2-4', { fallback: -1 }),
      array('topics', [
        field('name', 'string'),
        array('partitions', [
          field('partitionIndex', 'int32'),
          field('committedOffset', 'int64'),
          field('committedMetadata', 'nstring'),
        ]),
      ]),
    ],
    response: [
      throttle('3+'),
      array('topics', [field('name', 'string'), array('partitions', [field('partitionIndex', 'int32'), field('errorCode', 'int16')])]),
    ],
  },
  {
    key: ApiKey.OffsetFetch,
    name: 'OffsetFetch',
    min: 1,
    max: 4,
    request: [
      field('groupId', 'string'),
      array('topics', [field('name', 'string'), array('partitionIndexes', 'int32')], '0+', { nullable: '2+' }),
    ],
    response: [
      throttle('3+'),
      array('topics', [
        field('name', 'string'),
        array('partitions', [
          field('partitionIndex', 'int32'),
          field('committedOffset', 'int64'),
          field('metadata', 'nstring'),
          field('errorCode', 'int16'),
        ]),
      ]),
      field('errorCode', 'int16', '2+'),
    ],
  },
  {
    key: ApiKey.FindCoordinator,
    name: 'FindCoordinator',
    min: 0,
    max: 2,
    request: [field('key', 'string'), field('keyType', 'int8', '1+')],
    response: [
      throttle('1+'),
      field('errorCode', 'int16'),
      field('errorMessage', 'nstring', '1+'),
      field('nodeId', 'int32'),
      field('host', 'string'),
      field('port', 'int32'),
    ],
  },
  {
    key: ApiKey.JoinGroup,
    name: 'JoinGroup',
    min: 0,
    max: 5,
    request: [
      field('groupId', 'string'),
      field('sessionTimeoutMs', 'int32'),
      field('rebalanceTimeoutMs', 'int32', '1+', { fallback: -1 }),
      field('memberId', 'string'),
      field('groupInstanceId', 'nstring', '5+'),
      field('protocolType', 'string'),
      array('protocols', [field('name', 'string'), field('metadata', 'bytes')]),
    ],
    response: [
      throttle('2+'),
      field('errorCode', 'int16'),
      field('generationId', 'int32', '0+', { fallback: -1 }),
      field('protocolName', 'string'),
      field('leader', 'string'),
      field('memberId', 'string'),
      array('members', [field('memberId', 'string'), field('groupInstanceId', 'nstring', '5+'), field('metadata', 'bytes')]),
    ],
  },
  {
    key: ApiKey.Heartbeat,
    name: 'Heartbeat',
    min: 0,
    max: 3,
    request: [
      field('groupId', 'string'),
      field('generationId', 'int32'),
      field('memberId', 'string'),
      field('groupInstanceId', 'nstring', '3+'),
    ],
    response: [throttle('1+'), field('errorCode', 'int16')],
  },
  {
    key: ApiKey.LeaveGroup,
    name: 'LeaveGroup',
    min: 0,
    max: 3,
    request: [
      field('groupId', 'string'),
      field('memberId', 'string', '0-2'),
      array('members', [field('memberId', 'string'), field('groupInstanceId', 'nstring')], '3+'),
    ],
    response: [
      throttle('1+'),
      field('errorCode', 'int16'),
      array('members', [field('memberId', 'string'), field('groupInstanceId', 'nstring'), field('errorCode', 'int16')], '3+'),
    ],
  },
  {
    key: ApiKey.SyncGroup,
    name: 'SyncGroup',
    min: 0,
    max: 3,
    request: [
      field('groupId', 'string'),
      field('generationId', 'int32'),
      field('memberId', 'string'),
      field('groupInstanceId', 'nstring', '3+'),
      array('assignments', [field('memberId', 'string'), field('assignment', 'bytes')]),
    ],
    response: [throttle('1+'), field('errorCode', 'int16'), field('assignment', 'bytes')],
  },
  {
    key: ApiKey.DescribeGroups,
    name: 'DescribeGroups',
    min: 0,
    max: 2,
    request: [array('groups', 'string')],
    response: [
      throttle('1+'),
      array('groups', [
        field('errorCode', 'int16'),
        field('groupId', 'string'),
        field('groupState', 'string'),
        field('protocolType', 'string'),
        field('protocolData', 'string'),
        array('members', [
          field('memberId', 'string'),
          field('clientId', 'string'),
          field('clientHost', 'string'),
          field('memberMetadata', 'bytes'),
          field('memberAssignment', 'bytes'),
        ]),
      ]),
    ],
  },
  {
    key: ApiKey.ListGroups,
    name: 'ListGroups',
    min: 0,
    max: 2,
    request: [],
    response: [throttle('1+'), field('errorCode', 'int16'), array('groups', [field('groupId', 'string'), field('protocolType', 'string')])],
  },
  {
    key: ApiKey.ApiVersions,
    name: 'ApiVersions',
    min: 0,
    max: 2,
    request: [],
    response: [
      field('errorCode', 'int16'),
      array('apiKeys', [field('apiKey', 'int16'), field('minVersion', 'int16'), field('maxVersion', 'int16')]),
      throttle('1+'),
    ],
  },
  {
    key: ApiKey.CreateTopics,
    name: 'CreateTopics',
    min: 0,
    max: 3,
    request: [
      array('topics', [
        field('name', 'string'),
        field('numPartitions', 'int32'),
        field('replicationFactor', 'int16'),
        array('assignments', [field('partitionIndex', 'int32'), array('brokerIds', 'int32')]),
        array('configs', [field('name', 'string'), field('value', 'nstring')]),
      ]),
      field('timeoutMs', 'int32'),
      field('validateOnly', 'bool', '1+'),
    ],
    response: [
      throttle('2+'),
      array('topics', [field('name', 'string'), field('errorCode', 'int16'), field('errorMessage', 'nstring', '1+')]),
    ],
  },
  {
    key: ApiKey.DeleteTopics,
    name: 'DeleteTopics',
    min: 0,
    max: 1,
    request: [array('topicNames', 'string'), field('timeoutMs', 'int32')],
    response: [throttle('1+'), array('responses', [field('name', 'string'), field('errorCode', 'int16')])],
  },
  {
    key: ApiKey.DeleteRecords,
    name: 'DeleteRecords',
    min: 0,
    max: 1,
    request: [
      array('topics', [field('name', 'string'), array('partitions', [field('partitionIndex', 'int32'), field('offset', 'int64')])]),
      field('timeoutMs', 'int32'),
    ],
    response: [
      throttle('0+'),
      array('topics', [
        field('name', 'string'),
        array('partitions', [field('partitionIndex', 'int32'), field('lowWatermark', 'int64'), field('errorCode', 'int16')]),
      ]),
    ],
  },
  {
    key: ApiKey.DescribeConfigs,
    name: 'DescribeConfigs',
    min: 0,
    max: 2,
    request: [
      array('resources', [
        field('resourceType', 'int8'),
        field('resourceName', 'string'),
        array('configurationKeys', 'string', '0+', { nullable: '0+' }),
      ]),
      field('includeSynonyms', 'bool', '1+'),
    ],
    response: [
      throttle('0+'),
      array('results', [
        field('errorCode', 'int16'),
        field('errorMessage', 'nstring'),
        field('resourceType', 'int8'),
        field('resourceName', 'string'),
        array('configs', [
          field('name', 'string'),
          field('value', 'nstring'),
          field('readOnly', 'bool'),
          field('isDefault', 'bool', '0'),
          field('configSource', 'int8', '1+', { fallback: -1 }),
          field('isSensitive', 'bool'),
          array('synonyms', [field('name', 'string'), field('value', 'nstring'), field('source', 'int8')], '1+'),
        ]),
      ]),
    ],
  },
  {
    key: ApiKey.AlterConfigs,
    name: 'AlterConfigs',
    min: 0,
    max: 1,
    request: [
      array('resources', [
        field('resourceType', 'int8'),
        field('resourceName', 'string'),
        array('configs', [field('name', 'string'), field('value', 'nstring')]),
      ]),
      field('validateOnly', 'bool'),
    ],
    response: [
      throttle('0+'),
      array('responses', [field('errorCode', 'int16'), field('errorMessage', 'nstring'), field('resourceType', 'int8'), field('resourceName', 'string')]),
    ],
  },
  {
    key: ApiKey.InitProducerId,
    name: 'InitProducerId',
    min: 0,
    max: 1,
    request: [field('transactionalId', 'nstring'), field('transactionTimeoutMs', 'int32')],
    response: [throttle('0+'), field('errorCode', 'int16'), field('producerId', 'int64', '0+', { fallback: -1 }), field('producerEpoch', 'int16', '0+', { fallback: -1 })],
  },
  {
    key: ApiKey.CreatePartitions,
    name: 'CreatePartitions',
    min: 0,
    max: 1,
    request: [
      array('topics', [
        field('name', 'string'),
        field('count', 'int32'),
        array('assignments', [array('brokerIds', 'int32')], '0+', { nullable: '0+' }),
      ]),
      field('timeoutMs', 'int32'),
      field('validateOnly', 'bool'),
    ],
    response: [throttle('0+'), array('results', [field('name', 'string'), field('errorCode', 'int16'), field('errorMessage', 'nstring')])],
  },
  {
    key: ApiKey.IncrementalAlterConfigs,
    name: 'IncrementalAlterConfigs',
    min: 0,
    max: 0,
    request: [
      array('resources', [
        field('resourceType', 'int8'),
        field('resourceName', 'string'),
        array('configs', [field('name', 'string'), field('configOperation', 'int8'), field('value', 'nstring')]),
      ]),
      field('validateOnly', 'bool'),
    ],
    response: [
      throttle('0+'),
      array('responses', [field('errorCode', 'int16'), field('errorMessage', 'nstring'), field('resourceType', 'int8'), field('resourceName', 'string')]),
    ],
  },
  {
    key: ApiKey.DeleteGroups,
    name: 'DeleteGroups',
    min: 0,
    max: 1,
    request: [array('groupsNames', 'string')],
    response: [throttle('0+'), array('results', [field('groupId', 'string'), field('errorCode', 'int16')])],
  },
];

export const API_BY_KEY = new Map(APIS.map((a) => [a.key, a]));
