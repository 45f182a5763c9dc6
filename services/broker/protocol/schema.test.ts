import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { APIS, API_BY_KEY, ApiKey } from './apis.js';
import { decode, encode, type Field, type Message, type Schema } from './schema.js';
import { ProtocolError, Reader, Writer } from './primitives.js';
import { validateBatches } from '../log/record-batch.js';

const has = (f: Field, v: number): boolean => v >= f.versions.min && v <= f.versions.max;

/** A message with every field of `schema` at `version` set to a distinctive value. */
function sample(schema: Schema, version: number, nullArrays: boolean, seed = { n: 1 }): Message {
  const out: Message = {};
  for (const f of schema) {
    if (!has(f, version)) continue;
    const one = (): unknown => {
      const n = seed.n++;
      if (typeof f.type !== 'string') return sample(f.type, version, nullArrays, seed);
      switch (f.type) {
        case 'int8':
          return n % 100;
        case 'int16':
          return n;
        case 'int32':
          return n * 1000;
        case 'int64':
          return 2 ** 40 + n;
        case 'bool':
          return n % 2 === 0;
        case 'string':
          return `s${n}-é`;
        case 'nstring':
          return n % 3 === 0 ? null : `n${n}`;
        case 'bytes':
        case 'nbytes':
          return Buffer.from(`b${n}`);
      }
    };
    if (!f.array) out[f.name] = one();
    else if (nullArrays && f.nullable && has({ ...f, versions: f.nullable }, version)) out[f.name] = null;
    else out[f.name] = [one(), one()];
  }
  return out;
}

function roundTrip(schema: Schema, version: number, msg: Message): { back: Message; leftover: number } {
  const w = new Writer();
  encode(schema, version, msg, w);
  const r = new Reader(Buffer.concat(w.finish()));
  const back = decode(schema, version, r);
  return { back, leftover: r.remaining };
}

describe('schema codec round trip: every API, every advertised version', () => {
  for (const api of APIS) {
    for (let v = api.min; v <= api.max; v++) {
      for (const nullArrays of [false, true]) {
        test(`${api.name} v${v}${nullArrays ? ' (null arrays)' : ''}`, () => {
          for (const [kind, schema] of [['request', api.request], ['response', api.response]] as const) {
            const msg = sample(schema, v, nullArrays);
            const { back, leftover } = roundTrip(schema, v, msg);
            assert.deepEqual(back, msg, `${kind} survives encode/decode`);
            assert.equal(leftover, 0, `${kind} decode consumes exactly what encode wrote`);
          }
        });
      }
    }
  }

  test('missing fields are written as their fallbacks', () => {
    const spec = API_BY_KEY.get(ApiKey.Fetch)!;
    const { back } = roundTrip(spec.response, 11, { responses: [{ topic: 't', partitions: [{ partitionIndex: 0 }] }] });
    const p = back.responses[0].partitions[0];
    assert.deepEqual([p.lastStableOffset, p.logStartOffset, p.abortedTransactions, p.preferredReadReplica, p.records], [-1, -1, null, -1, null]);
  });
});

describe('primitives', () => {
  const truncated: Array<[string, Buffer, (r: Reader) => unknown]> = [
    ['int32 from 3 bytes', Buffer.alloc(3), (r) => r.int32()],
    ['int64 from 7 bytes', Buffer.alloc(7), (r) => r.int64()],
    ['a string longer than the frame', Buffer.from([0, 9, 65]), (r) => r.string()],
    ['bytes longer than the frame', Buffer.from([0, 0, 0, 5, 1]), (r) => r.bytes()],
    ['a null where a string is required', Buffer.from([0xff, 0xff]), (r) => r.string()],
    ['an array longer than the frame could hold', Buffer.from([0x7f, 0xff, 0xff, 0xff]), (r) => r.arrayLength()],
    ['an array length below -1', Buffer.from([0xff, 0xff, 0xff, 0xfe]), (r) => r.arrayLength()],
  ];
  for (const [name, buf, read] of truncated) {
    test(`${name} is a ProtocolError`, () => {
      assert.throws(() => read(new Reader(buf)), ProtocolError);
    });
  }

  test('nullable values', () => {
    const w = new Writer().nstring(null).nbytes(null).nstring('').int32(-1);
    const r = new Reader(Buffer.concat(w.finish()));
    assert.deepEqual([r.nstring(), r.nbytes(), r.nstring(), r.arrayLength()], [null, null, '', -1]);
  });

  test('large byte chunks pass through without copying and lengths stay right', () => {
    const big = Buffer.alloc(10_000, 1);
    const w = new Writer().int16(7).nbytes([big, Buffer.from('xy')]).int8(3);
    const chunks = w.finish();
    assert.ok(chunks.includes(big));
    const all = Buffer.concat(chunks);
    assert.equal(all.length, w.length);
    const r = new Reader(all);
    assert.equal(r.int16(), 7);
    assert.equal(r.bytes().length, 10_002);
    assert.equal(r.int8(), 3);
  });

  test('int64 keeps values up to 2^53', () => {
    const w = new Writer().int64(2 ** 53 - 1).int64(-1);
    const r = new Reader(Buffer.concat(w.finish()));
    assert.deepEqual([r.int64(), r.int64()], [2 ** 53 - 1, -1]);
  });
});

// ---- cross-checks against kafkajs 2.2.4's own encoders and decoders ----

const require = createRequire(import.meta.url);
/* eslint-disable @typescript-eslint/no-explicit-any */
const kjs = (name: string): { protocol: (o: { version: number }) => (args?: any) => { request: any; response: any } } =>
  require(`kafkajs/src/protocol/requests/${name}/index.js`);

async function kafkajsRequest(name: string, version: number, args: unknown): Promise<Message> {
  const { request } = kjs(name).protocol({ version })(args);
  const encoded = await request.encode();
  const spec = APIS.find((a) => a.key === request.apiKey)!;
  assert.equal(request.apiVersion, version);
  const r = new Reader(encoded.buffer);
  const msg = decode(spec.request, version, r);
  assert.equal(r.remaining, 0, `${name} v${version}: the whole kafkajs request is read`);
  return msg;
}

async function kafkajsDecode(name: string, version: number, args: unknown, msg: Message): Promise<any> {
  const { response } = kjs(name).protocol({ version })(args);
  const spec = APIS.find((a) => a.name.toLowerCase() === name.toLowerCase())!;
  const w = new Writer();
  encode(spec.response, version, msg, w);
  return response.decode(Buffer.concat(w.finish()));
}

const versionsOf = (key: number): number[] => {
  const a = API_BY_KEY.get(key)!;
  return Array.from({ length: a.max - a.min + 1 }, (_, i) => a.min + i);
};

describe('kafkajs requests decode as intended', () => {
  for (const v of versionsOf(ApiKey.Produce)) {
    test(`Produce v${v}`, async () => {
      const m = await kafkajsRequest('produce', v, {
        acks: -1,
        timeout: 1234,
        compression: 0,
        transactionalId: null,
        producerId: 77,
        producerEpoch: 2,
        topicData: [{ topic: 'orders', partitions: [{ partition: 3, firstSequence: 9, messages: [{ key: 'k', value: 'v' }] }] }],
      });
      assert.equal(m.acks, -1);
      assert.equal(m.timeoutMs, 1234);
      assert.equal(m.topicData[0].name, 'orders');
      assert.equal(m.topicData[0].partitionData[0].index, 3);
      const records: Buffer = m.topicData[0].partitionData[0].records;
      if (v < 3) {
        // kafkajs sends message sets v0/v1 below Produce v3: the broker refuses those formats.
        assert.ok(records.readInt8(16) < 2, 'an old message format');
        return;
      }
      const [batch] = validateBatches(records);
      assert.deepEqual([batch.producerId, batch.producerEpoch, batch.baseSequence, batch.recordCount], [77, 2, 9, 1]);
    });
  }
  for (const v of versionsOf(ApiKey.Fetch)) {
    test(`Fetch v${v}`, async () => {
      const m = await kafkajsRequest('fetch', v, {
        maxWaitTime: 500,
        minBytes: 1,
        maxBytes: 10_000,
        rackId: 'r1',
        topics: [{ topic: 't', partitions: [{ partition: 2, fetchOffset: '42', maxBytes: 999 }] }],
      });
      assert.deepEqual([m.maxWaitMs, m.minBytes], [500, 1]);
      if (v >= 3) assert.equal(m.maxBytes, 10_000);
      const p = m.topics[0].partitions[0];
      assert.deepEqual([m.topics[0].topic, p.partition, p.fetchOffset, p.partitionMaxBytes], ['t', 2, 42, 999]);
      if (v >= 11) assert.equal(m.rackId, 'r1');
    });
  }
  for (const v of versionsOf(ApiKey.ListOffsets)) {
    test(`ListOffsets v${v}`, async () => {
      const m = await kafkajsRequest('listOffsets', v, { topics: [{ topic: 't', partitions: [{ partition: 1, timestamp: -2 }] }] });
      const partition = v === 0 ? { partitionIndex: 1, timestamp: -2, maxNumOffsets: 1 } : { partitionIndex: 1, timestamp: -2 };
      assert.deepEqual(m.topics, [{ name: 't', partitions: [partition] }]);
    });
  }
  for (const v of versionsOf(ApiKey.Metadata)) {
    test(`Metadata v${v}`, async () => {
      const m = await kafkajsRequest('metadata', v, { topics: ['a', 'b'], allowAutoTopicCreation: false });
      assert.deepEqual(m.topics, [{ name: 'a' }, { name: 'b' }]);
      if (v >= 4) assert.equal(m.allowAutoTopicCreation, false);
    });
  }
  for (const v of versionsOf(ApiKey.OffsetCommit)) {
    test(`OffsetCommit v${v}`, async () => {
      const m = await kafkajsRequest('offsetCommit', v, {
        groupId: 'g',
        groupGenerationId: 5,
        memberId: 'm',
        topics: [{ topic: 't', partitions: [{ partition: 0, offset: '17', metadata: 'meta' }] }],
      });
      assert.deepEqual([m.groupId, m.generationId, m.memberId], ['g', 5, 'm']);
      assert.deepEqual(m.topics, [{ name: 't', partitions: [{ partitionIndex: 0, committedOffset: 17, committedMetadata: 'meta' }] }]);
    });
  }
  for (const v of versionsOf(ApiKey.OffsetFetch)) {
    test(`OffsetFetch v${v}`, async () => {
      const m = await kafkajsRequest('offsetFetch', v, { groupId: 'g', topics: [{ topic: 't', partitions: [{ partition: 0 }, { partition: 4 }] }] });
      assert.deepEqual(m.topics, [{ name: 't', partitionIndexes: [0, 4] }]);
    });
  }
  for (const v of versionsOf(ApiKey.JoinGroup)) {
    test(`JoinGroup v${v}`, async () => {
      const m = await kafkajsRequest('joinGroup', v, {
        groupId: 'g',
        sessionTimeout: 6000,
        rebalanceTimeout: 9000,
        memberId: 'm1',
        protocolType: 'consumer',
        groupProtocols: [{ name: 'RoundRobinAssigner', metadata: Buffer.from([1, 2]) }],
      });
      assert.deepEqual([m.groupId, m.sessionTimeoutMs, m.memberId, m.protocolType], ['g', 6000, 'm1', 'consumer']);
      if (v >= 1) assert.equal(m.rebalanceTimeoutMs, 9000);
      assert.deepEqual(m.protocols, [{ name: 'RoundRobinAssigner', metadata: Buffer.from([1, 2]) }]);
    });
  }
  for (const v of versionsOf(ApiKey.SyncGroup)) {
    test(`SyncGroup v${v}`, async () => {
      const m = await kafkajsRequest('syncGroup', v, { groupId: 'g', generationId: 3, memberId: 'm', groupAssignment: [{ memberId: 'm', memberAssignment: Buffer.from('x') }] });
      assert.deepEqual([m.groupId, m.generationId, m.memberId], ['g', 3, 'm']);
      assert.deepEqual(m.assignments, [{ memberId: 'm', assignment: Buffer.from('x') }]);
    });
  }
  for (const v of versionsOf(ApiKey.Heartbeat)) {
    test(`Heartbeat v${v}`, async () => {
      const m = await kafkajsRequest('heartbeat', v, { groupId: 'g', groupGenerationId: 3, memberId: 'm' });
      assert.deepEqual([m.groupId, m.generationId, m.memberId], ['g', 3, 'm']);
    });
  }
  for (const v of versionsOf(ApiKey.LeaveGroup)) {
    test(`LeaveGroup v${v}`, async () => {
      const m = await kafkajsRequest('leaveGroup', v, { groupId: 'g', memberId: 'm' });
      if (v >= 3) assert.deepEqual(m.members, [{ memberId: 'm', groupInstanceId: null }]);
      else assert.equal(m.memberId, 'm');
    });
  }
  for (const [name, key, args, check] of [
    ['describeGroups', ApiKey.DescribeGroups, { groupIds: ['a', 'b'] }, (m: Message) => assert.deepEqual(m.groups, ['a', 'b'])],
    ['listGroups', ApiKey.ListGroups, undefined, (m: Message) => assert.deepEqual(m, {})],
    ['apiVersions', ApiKey.ApiVersions, undefined, (m: Message) => assert.deepEqual(m, {})],
    ['deleteTopics', ApiKey.DeleteTopics, { topics: ['x', 'y'], timeout: 10 }, (m: Message) => assert.deepEqual(m, { topicNames: ['x', 'y'], timeoutMs: 10 })],
    ['initProducerId', ApiKey.InitProducerId, { transactionalId: null }, (m: Message) => assert.equal(m.transactionalId, null)],
    ['deleteGroups', ApiKey.DeleteGroups, ['g1', 'g2'], (m: Message) => assert.deepEqual(m.groupsNames, ['g1', 'g2'])],
    ['findCoordinator', ApiKey.FindCoordinator, { groupId: 'g' }, (m: Message) => assert.equal(m.key, 'g')],
    [
      'createPartitions',
      ApiKey.CreatePartitions,
      { topicPartitions: [{ topic: 't', count: 4 }], timeout: 5, validateOnly: true },
      (m: Message) => assert.deepEqual(m, { topics: [{ name: 't', count: 4, assignments: null }], timeoutMs: 5, validateOnly: true }),
    ],
    [
      'createTopics',
      ApiKey.CreateTopics,
      { topics: [{ topic: 't', numPartitions: 3, replicationFactor: 1, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }], timeout: 7, validateOnly: false },
      (m: Message) => {
        assert.equal(m.topics[0].name, 't');
        assert.equal(m.topics[0].numPartitions, 3);
        assert.deepEqual(m.topics[0].configs, [{ name: 'cleanup.policy', value: 'compact' }]);
      },
    ],
  ] as Array<[string, number, unknown, (m: Message) => void]>) {
    for (const v of versionsOf(key)) {
      test(`${name} v${v}`, async () => check(await kafkajsRequest(name, v, args)));
    }
  }
});

describe('our responses decode in kafkajs', () => {
  for (const v of versionsOf(ApiKey.Metadata)) {
    test(`Metadata v${v}`, async () => {
      const r = await kafkajsDecode('metadata', v, {}, {
        throttleTimeMs: 0,
        brokers: [{ nodeId: 1, host: 'h.example', port: 9092, rack: null }],
        clusterId: 'cid',
        controllerId: 1,
        topics: [{ errorCode: 0, name: 't', isInternal: false, partitions: [{ errorCode: 0, partitionIndex: 0, leaderId: 1, replicaNodes: [1], isrNodes: [1], offlineReplicas: [] }] }],
      });
      assert.equal(r.brokers[0].host, 'h.example');
      assert.equal(r.topicMetadata[0].topic, 't');
      assert.equal(r.topicMetadata[0].partitionMetadata[0].leader, 1);
    });
  }
  for (const v of versionsOf(ApiKey.Produce)) {
    test(`Produce v${v}`, async () => {
      const r = await kafkajsDecode('produce', v, {}, {
        responses: [{ name: 't', partitionResponses: [{ index: 2, errorCode: 0, baseOffset: 1234, logAppendTimeMs: -1, logStartOffset: 7 }] }],
        throttleTimeMs: 0,
      });
      const p = r.topics[0].partitions[0];
      // kafkajs names the field `offset` below v3.
      assert.deepEqual([r.topics[0].topicName, p.partition, p.errorCode, String(v < 3 ? p.offset : p.baseOffset)], ['t', 2, 0, '1234']);
    });
  }
  for (const v of versionsOf(ApiKey.Fetch).filter((x) => x < 4)) {
    test(`Fetch v${v} (answered UNSUPPORTED_VERSION per partition)`, async () => {
      const body = { throttleTimeMs: 0, responses: [{ topic: 't', partitions: [{ partitionIndex: 0, errorCode: 35, highWatermark: -1, records: null }] }] };
      const r = await kafkajsDecode('fetch', v, { topics: [] }, body);
      assert.deepEqual([r.responses[0].topicName, r.responses[0].partitions[0].errorCode], ['t', 35]);
    });
  }
  for (const v of versionsOf(ApiKey.Fetch).filter((x) => x >= 4)) {
    test(`Fetch v${v}`, async () => {
      const { encodeBatch } = await import('../../../test/broker/support/batch-encoder.js');
      const records = encodeBatch({ records: [{ key: 'k', value: 'hello' }], baseOffset: 10 });
      const r = await kafkajsDecode('fetch', v, { topics: [] }, {
        throttleTimeMs: 0,
        errorCode: 0,
        sessionId: 0,
        responses: [{ topic: 't', partitions: [{ partitionIndex: 0, errorCode: 0, highWatermark: 11, lastStableOffset: 11, logStartOffset: 0, abortedTransactions: null, records }] }],
      });
      const p = r.responses[0].partitions[0];
      assert.equal(String(p.highWatermark), '11');
      assert.equal(p.messages.length, 1);
      assert.equal(p.messages[0].value.toString(), 'hello');
      assert.equal(String(p.messages[0].offset), '10');
    });
  }
  for (const v of versionsOf(ApiKey.JoinGroup)) {
    test(`JoinGroup v${v}`, async () => {
      const r = await kafkajsDecode('joinGroup', v, {}, {
        throttleTimeMs: 0,
        errorCode: 0,
        generationId: 4,
        protocolName: 'RoundRobinAssigner',
        leader: 'm1',
        memberId: 'm2',
        members: [{ memberId: 'm1', groupInstanceId: null, metadata: Buffer.from('md') }],
      });
      assert.deepEqual([r.generationId, r.groupProtocol, r.leaderId, r.memberId], [4, 'RoundRobinAssigner', 'm1', 'm2']);
      assert.equal(r.members[0].memberMetadata.toString(), 'md');
    });
  }
  for (const v of versionsOf(ApiKey.LeaveGroup)) {
    test(`LeaveGroup v${v}`, async () => {
      const r = await kafkajsDecode('leaveGroup', v, {}, { throttleTimeMs: 0, errorCode: 0, members: [{ memberId: 'm', groupInstanceId: null, errorCode: 0 }] });
      assert.equal(r.errorCode, 0);
      if (v >= 3) assert.equal(r.members[0].memberId, 'm');
    });
  }
  for (const v of versionsOf(ApiKey.DescribeGroups)) {
    test(`DescribeGroups v${v}`, async () => {
      const r = await kafkajsDecode('describeGroups', v, {}, {
        throttleTimeMs: 0,
        groups: [{ errorCode: 0, groupId: 'g', groupState: 'Stable', protocolType: 'consumer', protocolData: 'RoundRobinAssigner', members: [{ memberId: 'm', clientId: 'c', clientHost: '/h', memberMetadata: Buffer.from('a'), memberAssignment: Buffer.from('b') }] }],
      });
      assert.equal(r.groups[0].state, 'Stable');
      assert.equal(r.groups[0].members[0].memberAssignment.toString(), 'b');
    });
  }
  for (const v of versionsOf(ApiKey.OffsetFetch)) {
    test(`OffsetFetch v${v}`, async () => {
      const r = await kafkajsDecode('offsetFetch', v, {}, {
        throttleTimeMs: 0,
        topics: [{ name: 't', partitions: [{ partitionIndex: 1, committedOffset: 99, metadata: '', errorCode: 0 }] }],
        errorCode: 0,
      });
      assert.equal(r.responses[0].partitions[0].offset, '99');
    });
  }
  for (const v of versionsOf(ApiKey.ListOffsets)) {
    test(`ListOffsets v${v}`, async () => {
      const r = await kafkajsDecode('listOffsets', v, {}, { throttleTimeMs: 0, topics: [{ name: 't', partitions: [{ partitionIndex: 0, errorCode: 0, timestamp: 5, offset: 77, oldStyleOffsets: [77, 3] }] }] });
      if (v === 0) assert.deepEqual(r.responses[0].partitions[0].offsets.map(String), ['77', '3']);
      else assert.equal(String(r.responses[0].partitions[0].offset), '77');
    });
  }
  for (const v of versionsOf(ApiKey.ApiVersions)) {
    test(`ApiVersions v${v}`, async () => {
      const r = await kafkajsDecode('apiVersions', v, {}, { errorCode: 0, apiKeys: [{ apiKey: 3, minVersion: 1, maxVersion: 6 }], throttleTimeMs: 0 });
      assert.deepEqual(r.apiVersions, [{ apiKey: 3, minVersion: 1, maxVersion: 6 }]);
    });
  }
  for (const v of versionsOf(ApiKey.CreateTopics)) {
    test(`CreateTopics v${v}`, async () => {
      const r = await kafkajsDecode('createTopics', v, {}, { throttleTimeMs: 0, topics: [{ name: 't', errorCode: 36, errorMessage: 'exists' }] });
      assert.deepEqual([r.topicErrors[0].topic, r.topicErrors[0].errorCode], ['t', 36]);
    });
  }
  for (const v of versionsOf(ApiKey.InitProducerId)) {
    test(`InitProducerId v${v}`, async () => {
      const r = await kafkajsDecode('initProducerId', v, {}, { throttleTimeMs: 0, errorCode: 0, producerId: 4242, producerEpoch: 0 });
      assert.equal(String(r.producerId), '4242');
    });
  }
});
