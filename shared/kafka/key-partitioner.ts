/**
 * The partitioner of every producer `createKafka` makes: the same partition for every record as
 * kafkajs's DefaultPartitioner (Kafka's Java client's: murmur2 of the key's bytes, seed
 * 0x9747b28c, made positive, modulo the topic's partition count; round robin over the available
 * partitions for a record without a key), so records of one key land where any Kafka client
 * puts them. What differs is the hash's cost: kafkajs computes murmur2 with its 64-bit Long
 * class, ~4 µs for a message id's 36 bytes, the `murmurhash` package in 32-bit arithmetic
 * ~0.2 µs — and each message's request record, events and dispatch records are all keyed
 * (measured: ~2.5 % of the stages process's CPU under `npm start` batches went to the hash).
 * key-partitioner.test.ts checks both agree on random keys of every length.
 */
import { randomInt } from 'node:crypto';
import type { ICustomPartitioner } from 'kafkajs';
import murmurhash from 'murmurhash';

const SEED = 0x9747b28c;

/** The partition of `key` among `partitions` (Kafka's default partitioner; a key that is not a Buffer is hashed as its string's UTF-8, as kafkajs does). */
export function partitionOfKey(key: Buffer | string, partitions: number): number {
  return (murmurhash.v2(Buffer.isBuffer(key) ? key : Buffer.from(String(key)), SEED) & 0x7fffffff) % partitions;
}

export const keyPartitioner: ICustomPartitioner = () => {
  const counters = new Map<string, number>();
  return ({ topic, partitionMetadata, message }) => {
    if (message.partition !== null && message.partition !== undefined) return message.partition;
    if (message.key !== null && message.key !== undefined) return partitionOfKey(message.key, partitionMetadata.length);
    const next = (counters.get(topic) ?? randomInt(2 ** 31)) + 1;
    counters.set(topic, next);
    const available = partitionMetadata.filter((p) => p.leader >= 0);
    return available.length > 0 ? available[(next & 0x7fffffff) % available.length].partitionId : (next & 0x7fffffff) % partitionMetadata.length;
  };
};
