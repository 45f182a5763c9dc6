/**
 * Linger-style batching over a kafkajs producer (kafkajs has no `linger.ms`): records sent
 * within a short window, or until a size bound, go out in one `sendBatch` — one request and,
 * on the broker, one fsync — and each caller's promise resolves when its own record is acked
 * with acks=-1. Under load this turns thousands of single-record sends into a few batches;
 * when idle a record waits at most `lingerMs`.
 */
import type { Message, Producer, RecordMetadata } from 'kafkajs';
import { traceProducedRecord } from '../tracing.js';

export interface BatchingProducerOptions {
  /** Longest a record waits for company before its batch is sent (default 2 ms). */
  lingerMs?: number;
  /** Send as soon as this many records are waiting (default 1000). */
  maxBatchRecords?: number;
  /**
   * Send before the waiting records' keys and values exceed this many bytes (default 768 KiB),
   * so one batch stays under the broker's `max.message.bytes` (1 MiB by default) even when all
   * its records land on one partition. A larger record goes out on its own.
   */
  maxBatchBytes?: number;
}

interface Waiting {
  topic: string;
  message: Message;
  resolve: (m: RecordMetadata) => void;
  reject: (e: Error) => void;
}

export interface SendResult {
  topic: string;
  partition: number;
  offset: string;
}

function sizeOf(m: Message): number {
  const len = (v: unknown): number => (v === null || v === undefined ? 0 : Buffer.isBuffer(v) ? v.length : Buffer.byteLength(String(v)));
  let n = len(m.key) + len(m.value) + 70;
  for (const [k, v] of Object.entries(m.headers ?? {})) n += k.length + (Array.isArray(v) ? v.reduce((a, x) => a + len(x), 0) : len(v));
  return n;
}

export class BatchingProducer {
  private queue: Waiting[] = [];
  private timer?: NodeJS.Timeout;
  private inFlight = new Set<Promise<void>>();
  private readonly lingerMs: number;
  private readonly maxBatch: number;
  private readonly maxBytes: number;
  private queuedBytes = 0;

  constructor(
    readonly producer: Producer,
    opts: BatchingProducerOptions = {},
  ) {
    this.lingerMs = opts.lingerMs ?? 2;
    this.maxBatch = opts.maxBatchRecords ?? 1000;
    this.maxBytes = opts.maxBatchBytes ?? 768 * 1024;
  }

  /** Resolves once the record is durably acknowledged (acks=-1). */
  send(topic: string, message: Message): Promise<SendResult> {
    // The trace context is taken here, in the caller's context: the batch is sent from a timer.
    const traced = traceProducedRecord(topic, message);
    const size = sizeOf(traced.message);
    return new Promise<RecordMetadata>((resolve, reject) => {
      if (this.queuedBytes > 0 && this.queuedBytes + size > this.maxBytes) this.flush();
      this.queue.push({ topic, message: traced.message, resolve, reject });
      this.queuedBytes += size;
      if (this.queue.length >= this.maxBatch || this.queuedBytes >= this.maxBytes) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.lingerMs);
    }).then(
      (m) => {
        traced.end();
        return { topic: m.topicName, partition: m.partition, offset: String(m.baseOffset ?? m.offset ?? '') };
      },
      (err: unknown) => {
        traced.end(err);
        throw err;
      },
    );
  }

  /** Sends many records as one unit; resolves when all are acked. */
  sendMany(records: Array<{ topic: string; message: Message }>): Promise<SendResult[]> {
    return Promise.all(records.map((r) => this.send(r.topic, r.message)));
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.queue.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    this.queuedBytes = 0;
    const p = this.sendBatch(batch).finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  private async sendBatch(batch: Waiting[]): Promise<void> {
    // Group per topic and per partition key order is kept: kafkajs preserves message order
    // within a topic-partition for one sendBatch.
    const byTopic = new Map<string, Waiting[]>();
    for (const w of batch) {
      const list = byTopic.get(w.topic) ?? [];
      list.push(w);
      byTopic.set(w.topic, list);
    }
    try {
      const results = await this.producer.sendBatch({
        acks: -1,
        topicMessages: [...byTopic].map(([topic, ws]) => ({ topic, messages: ws.map((w) => w.message) })),
      });
      // kafkajs reports one entry per topic-partition with its base offset, not which record
      // went where; callers learn the topic and that the write is durable, not its offset.
      for (const [topic, ws] of byTopic) {
        for (const w of ws) {
          const meta = results.find((r) => r.topicName === topic) ?? { topicName: topic, partition: -1, errorCode: 0 };
          w.resolve(meta as RecordMetadata);
        }
      }
    } catch (err) {
      for (const w of batch) w.reject(err as Error);
    }
  }

  /** Sends what is queued and waits for every batch in flight. */
  async drain(): Promise<void> {
    this.flush();
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }
}
