import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { Partitioners, type PartitionMetadata } from 'kafkajs';
import { keyPartitioner, partitionOfKey } from './key-partitioner.js';

const metadata = (n: number, down: number[] = []): PartitionMetadata[] =>
  Array.from({ length: n }, (_, i) => ({ partitionId: i, leader: down.includes(i) ? -1 : 0, replicas: [0], isr: [0], partitionErrorCode: 0, offlineReplicas: [] }));

test("every key lands in the partition kafkajs's default partitioner picks (Kafka's murmur2), whatever its bytes or length", () => {
  const theirs = Partitioners.DefaultPartitioner();
  const ours = keyPartitioner();
  const keys: Array<Buffer | string> = [
    '', 'a', 'ab', 'abc', 'abcd', 'example.org', 'gmail.com', 'é', 'ÄÖÜ-ß', '😀x', 'xn--mnchen-3ya.de', randomUUID(),
    ...Array.from({ length: 20_000 }, (_, i) => randomBytes(i % 90)),
    ...Array.from({ length: 2_000 }, () => randomUUID()),
  ];
  for (const n of [1, 2, 3, 6, 12, 64]) {
    const partitionMetadata = metadata(n);
    for (const key of keys) {
      const message = { key, value: 'v' };
      const expected = theirs({ topic: 't', partitionMetadata, message });
      assert.equal(ours({ topic: 't', partitionMetadata, message }), expected, `key ${JSON.stringify(String(key))} over ${n} partitions`);
      assert.equal(partitionOfKey(key, n), expected);
    }
  }
});

test('an explicit partition wins; keyless records go round robin over the partitions that have a leader', () => {
  const ours = keyPartitioner();
  assert.equal(ours({ topic: 't', partitionMetadata: metadata(6), message: { key: 'k', value: 'v', partition: 4 } }), 4);
  const partitionMetadata = metadata(4, [1]);
  const picked = Array.from({ length: 9 }, () => ours({ topic: 't', partitionMetadata, message: { value: 'v' } }));
  assert.deepEqual([...new Set(picked)].sort(), [0, 2, 3], 'never the partition without a leader, every other one');
  for (let i = 1; i < picked.length; i++) assert.notEqual(picked[i], picked[i - 1], 'one after the other');
  assert.ok([0, 1, 2, 3].includes(ours({ topic: 't', partitionMetadata: metadata(4, [0, 1, 2, 3]), message: { value: 'v' } })), 'none available: still a partition');
});
