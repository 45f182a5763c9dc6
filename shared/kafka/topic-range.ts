/**
 * Reads a bounded range of a topic once: from a start (the beginning, a timestamp, or given
 * offsets per partition) up to the end offsets as they were when reading began, then stops.
 * Used by `postline dead`, the dead-letter API and the dispatcher's start-up read of recent
 * outcomes. A fresh consumer group is used and deleted afterwards. Its start offsets are set
 * with `seek` as soon as `run` has created the group, before its first fetch — not with
 * `admin.setOffsets`, which joins the group with a throwaway consumer and waits out a whole
 * idle fetch (5 s) before the real one can join — and records before the start are skipped
 * anyway, in case a restarted consumer lost the seeks.
 */
import { randomUUID } from 'node:crypto';
import type { Kafka, KafkaMessage } from 'kafkajs';

export interface RangeStart {
  /** Read from the first record at or after this time (ms); default: the beginning. */
  fromTimestamp?: number;
  /** Read only these partitions, from these offsets (overrides `fromTimestamp`). */
  offsets?: Array<{ partition: number; offset: string }>;
}

export interface RangeResult {
  messages: number;
  /** Every partition reached its end offset (false: stopped at the time limit). */
  complete: boolean;
}

/**
 * Calls `onMessage` for every record in the range, partition by partition in log order.
 * `stop()` inside `onMessage` ends reading early (e.g. once wanted offsets are seen).
 */
export async function readTopicRange(
  kafka: Kafka,
  topic: string,
  start: RangeStart,
  onMessage: (partition: number, message: KafkaMessage, stop: () => void) => void,
  opts: { timeoutMs: number; groupPrefix?: string },
): Promise<RangeResult> {
  const groupId = `${opts.groupPrefix ?? 'postline'}-range-${randomUUID()}`;
  const admin = kafka.admin();
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
  const result: RangeResult = { messages: 0, complete: false };
  let timer: NodeJS.Timeout | undefined;
  await admin.connect();
  try {
    const ends = new Map((await admin.fetchTopicOffsets(topic)).map((e) => [e.partition, { low: BigInt(e.low), high: BigInt(e.high) }]));
    const from =
      start.offsets ??
      (start.fromTimestamp !== undefined
        ? await admin.fetchTopicOffsetsByTimestamp(topic, start.fromTimestamp)
        : [...ends].map(([partition, e]) => ({ partition, offset: String(e.low) })));
    const todo = new Set(from.filter((f) => BigInt(f.offset) < (ends.get(f.partition)?.high ?? 0n)).map((f) => f.partition));
    if (todo.size === 0) return { ...result, complete: true };
    const starts = new Map(from.map((f) => [f.partition, BigInt(f.offset)]));
    let stopped = false;
    const done = new Promise<void>((resolve, reject) => {
      const stop = (): void => {
        stopped = true;
        resolve();
      };
      consumer
        .connect()
        .then(() => consumer.subscribe({ topic, fromBeginning: true }))
        .then(() => {
          const running = consumer.run({
            autoCommit: false,
            eachBatch: async ({ batch }) => {
              if (stopped || !todo.has(batch.partition)) return;
              const end = ends.get(batch.partition)!.high;
              const start = starts.get(batch.partition) ?? 0n;
              for (const m of batch.messages) {
                if (BigInt(m.offset) < start) continue;
                if (BigInt(m.offset) >= end) break;
                result.messages++;
                onMessage(batch.partition, m, stop);
                if (stopped) return;
              }
              if (BigInt(batch.lastOffset()) + 1n >= end) todo.delete(batch.partition);
              if (todo.size === 0) resolve();
            },
          });
          // `run` has created the consumer group synchronously; no fetch has been made yet.
          for (const f of from) consumer.seek({ topic, partition: f.partition, offset: f.offset });
          return running;
        })
        .catch(reject);
    });
    const timedOut = new Promise<void>((resolve) => (timer = setTimeout(resolve, opts.timeoutMs)));
    await Promise.race([done, timedOut]);
    result.complete = stopped || todo.size === 0;
    return result;
  } finally {
    clearTimeout(timer);
    await consumer.disconnect().catch(() => undefined);
    await admin.deleteGroups([groupId]).catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
  }
}
