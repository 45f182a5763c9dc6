import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_TOPIC_CONFIG, InvalidConfigError, parseTopicConfig } from './topic-config.js';

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
