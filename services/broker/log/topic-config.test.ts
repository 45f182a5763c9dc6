import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_TOPIC_CONFIG, InvalidConfigError, applyConfigOps, parseTopicConfig } from './topic-config.js';

describe('parseTopicConfig', () => {
  const valid: Array<[Record<string, string>, Partial<typeof DEFAULT_TOPIC_CONFIG>]> = [
    [{}, { cleanupPolicy: 'delete', segmentBytes: 128 * 1024 * 1024 }],
    [{ 'cleanup.policy': 'compact' }, { cleanupPolicy: 'compact' }],
    [{ 'cleanup.policy': 'delete, compact' }, { cleanupPolicy: 'compact,delete' }],
    [{ 'retention.ms': '-1', 'retention.bytes': '1048576' }, { retentionMs: -1, retentionBytes: 1048576 }],
    [{ 'segment.bytes': '1024', 'segment.ms': '1' }, { segmentBytes: 1024, segmentMs: 1 }],
    [{ 'segment.bytes': '2147483647' }, { segmentBytes: 2147483647 }],
    [{ 'delete.retention.ms': '0', 'index.interval.bytes': '0' }, { deleteRetentionMs: 0, indexIntervalBytes: 0 }],
    [{ 'min.insync.replicas': '2' }, {}],
    [{ 'min.compaction.lag.ms': '60000' }, { minCompactionLagMs: 60000 }],
  ];
  for (const [settings, expected] of valid) {
    test(`accepts ${JSON.stringify(settings)}`, () => {
      const cfg = parseTopicConfig(settings);
      for (const [k, v] of Object.entries(expected)) assert.deepEqual(cfg[k as keyof typeof cfg], v, k);
      assert.deepEqual(cfg.raw, settings, 'every setting is kept as given');
    });
  }

  const invalid: Array<[Record<string, string>, RegExp]> = [
    [{ 'cleanup.policy': 'shred' }, /cleanup\.policy/],
    [{ 'retention.ms': 'soon' }, /retention\.ms/],
    [{ 'retention.ms': '-2' }, /retention\.ms/],
    [{ 'retention.ms': '' }, /retention\.ms/],
    [{ 'segment.bytes': '1023' }, /segment\.bytes/],
    [{ 'segment.bytes': '4294967296' }, /segment\.bytes/],
    [{ 'segment.bytes': '1.5e3' }, /segment\.bytes/],
    [{ 'segment.ms': '0' }, /segment\.ms/],
    [{ 'max.message.bytes': '-1' }, /max\.message\.bytes/],
    [{ 'min.compaction.lag.ms': '-1' }, /min\.compaction\.lag\.ms/],
  ];
  for (const [settings, message] of invalid) {
    test(`refuses ${JSON.stringify(settings)}`, () => {
      assert.throws(() => parseTopicConfig(settings), (e: unknown) => e instanceof InvalidConfigError && message.test(e.message));
    });
  }

  test('settings layer over the broker defaults, and null values are ignored', () => {
    const defaults = parseTopicConfig({ 'retention.ms': '1000' });
    const cfg = parseTopicConfig({ 'segment.bytes': '2048', 'cleanup.policy': null as unknown as string }, defaults);
    assert.deepEqual([cfg.retentionMs, cfg.segmentBytes, cfg.cleanupPolicy], [1000, 2048, 'delete']);
    assert.deepEqual(cfg.raw, { 'segment.bytes': '2048' }, 'only the topic’s own settings are its raw config');
  });
});

describe('applyConfigOps (IncrementalAlterConfigs)', () => {
  const current = parseTopicConfig({ 'retention.ms': '1000', 'segment.bytes': '2048' });
  const table: Array<[string, Parameters<typeof applyConfigOps>[1], Record<string, string>]> = [
    ['SET changes one setting and keeps the others', [{ name: 'retention.ms', op: 0, value: '5000' }], { 'retention.ms': '5000', 'segment.bytes': '2048' }],
    ['DELETE returns a setting to its default', [{ name: 'segment.bytes', op: 1, value: null }], { 'retention.ms': '1000' }],
    ['APPEND adds to a list, starting from its effective value', [{ name: 'cleanup.policy', op: 2, value: 'compact' }], { 'retention.ms': '1000', 'segment.bytes': '2048', 'cleanup.policy': 'delete,compact' }],
    ['SUBTRACT removes from a list', [{ name: 'cleanup.policy', op: 3, value: 'delete' }], { 'retention.ms': '1000', 'segment.bytes': '2048', 'cleanup.policy': '' }],
  ];
  for (const [name, ops, expected] of table) {
    test(name, () => assert.deepEqual(applyConfigOps(current, ops), expected));
  }
  test('APPEND to a setting that is not a list, and SET without a value, are INVALID_CONFIG', () => {
    assert.throws(() => applyConfigOps(current, [{ name: 'retention.ms', op: 2, value: '1' }]), InvalidConfigError);
    assert.throws(() => applyConfigOps(current, [{ name: 'retention.ms', op: 0, value: null }]), InvalidConfigError);
  });
});
