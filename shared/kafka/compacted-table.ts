/**
 * An in-memory view of a compacted topic (templates, suppressions, idempotency keys): every
 * instance reads all partitions from the beginning, keeps the latest value per key, and stays
 * subscribed for changes. `put` produces and then waits until this instance has read its own
 * write, so a caller sees what it just wrote. Start-up waits until the view has caught up with
 * the log end, so a fresh replica never answers from a half-loaded table.
 *
 * kafkajs cannot read without a consumer group, so each instance uses a throwaway one (it must
 * see every partition and commits nothing) and deletes it on stop: restarts leave no groups
 * behind on the broker.
 */
import { randomUUID } from 'node:crypto';
import type { Admin, Consumer, Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import type { BatchingProducer } from './batching-producer.js';
import { AppliedOffsets } from './applied-offsets.js';
import { LONE_READER } from './client.js';

export interface CompactedTableOptions<V> {
  kafka: Kafka;
  producer: BatchingProducer;
  topic: string;
  logger: Logger;
  decode(value: Buffer): V;
  encode(value: V): Buffer;
  /** Decides the stored value when a key is written again (default: the newer value wins). */
  merge?(previous: V | undefined, next: V): V;
  /** Called for every applied change (after merge), e.g. to invalidate caches. */
  onChange?(key: string, value: V | undefined): void;
}

export class CompactedTable<V> {
  private map = new Map<string, V>();
  private consumer: Consumer;
  private admin: Admin;
  private readonly progress = new AppliedOffsets();
  private readonly groupId: string;

  constructor(private readonly opts: CompactedTableOptions<V>) {
    this.groupId = `postline-table-${opts.topic}-${randomUUID()}`;
    this.consumer = opts.kafka.consumer({ groupId: this.groupId, ...LONE_READER });
    this.admin = opts.kafka.admin();
  }

  async start(timeoutMs = 30_000): Promise<void> {
    await this.admin.connect();
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.opts.topic, fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        const key = message.key?.toString('utf8');
        if (key !== undefined) {
          if (message.value === null) {
            this.map.delete(key);
            this.opts.onChange?.(key, undefined);
          } else {
            try {
              const next = this.opts.decode(message.value);
              const value = this.opts.merge ? this.opts.merge(this.map.get(key), next) : next;
              this.map.set(key, value);
              this.opts.onChange?.(key, value);
            } catch (err) {
              this.opts.logger.warn({ topic: this.opts.topic, partition, offset: message.offset, err }, 'skipping undecodable table record');
            }
          }
        }
        this.progress.mark(partition, BigInt(message.offset));
      },
    });
    await Promise.race([
      this.catchUp(),
      new Promise((_, reject) => setTimeout(() => reject(new Error(`table ${this.opts.topic} did not load within ${timeoutMs} ms`)), timeoutMs).unref()),
    ]);
  }

  /** Resolves once every record written before this call has been applied here. */
  async catchUp(): Promise<void> {
    await this.progress.catchUp(this.admin, this.opts.topic);
  }



  /**
   * Forgets entries in memory only (the log keeps them until compaction or retention), e.g.
   * idempotency claims past their window, so a long-running replica's memory stays bounded.
   */
  evict(predicate: (key: string, value: V) => boolean): number {
    let n = 0;
    for (const [k, v] of this.map) {
      if (predicate(k, v)) {
        this.map.delete(k);
        n++;
      }
    }
    return n;
  }

  get(key: string): V | undefined {
    return this.map.get(key);
  }

  entries(): IterableIterator<[string, V]> {
    return this.map.entries();
  }

  get size(): number {
    return this.map.size;
  }

  /** Writes a value (null deletes) and resolves once this instance has applied it. */
  async put(key: string, value: V | null): Promise<V | undefined> {
    await this.opts.producer.send(this.opts.topic, { key, value: value === null ? null : this.opts.encode(value) });
    // Our record is below the end offsets read after its ack, so catching up includes it.
    await this.catchUp();
    return this.map.get(key);
  }

  /** Stops reading and deletes the throwaway group (safe to call after a failed start). */
  async stop(): Promise<void> {
    try {
      await this.consumer.disconnect();
      // Disconnecting left the group, so it is empty and can go.
      await this.admin.deleteGroups([this.groupId]).catch((err: unknown) => {
        this.opts.logger.warn({ topic: this.opts.topic, group: this.groupId, err }, 'could not delete the table reader group');
      });
    } finally {
      await this.admin.disconnect();
    }
  }
}
