/**
 * Linger-style batching over a kafkajs producer (kafkajs has no `linger.ms`): records sent
 * within a short window, or until a size bound, go out in one `sendBatch` — one request and,
 * on the broker, one fsync — and each caller's promise resolves when its own record is acked
 * with acks=-1. Under load this turns thousands of single-record sends into a few batches;
 * when idle a record waits at most `lingerMs` (by default 0: it goes out at the end of the
 * current I/O phase, so records sent in one tick still share a request).
 *
 * Like Kafka's own producer with `max.in.flight.requests.per.connection=1`, records that arrive
 * while a batch is in flight wait for it and go out together as the next batch, the moment it
 * is acked. The kafkajs producer is idempotent with one request in flight anyway, so sending
 * them separately would only queue them inside kafkajs, each paying its own request and, on
 * the broker, its own append; merged, a busy stage sends a few large requests instead of
 * hundreds of tiny ones (measured: see the issue 3 note), at no cost to the idle latency.
 *
 * A record the broker refuses for what it is (too large for the topic, invalid, corrupt: see
 * `refusalOf`) fails only its own `send()`, with a `PermanentError` carrying the broker's error
 * name as its code, so the stage dead-letters it and goes on: a record larger than the batch
 * bound always goes out alone, and when a merged batch is refused the records are sent again
 * one by one, so the others are written and only the refused one fails.
 */
import type { Message, Producer, RecordMetadata } from 'kafkajs';
import { PermanentError } from '../errors.js';
import { traceProducedRecord } from '../tracing.js';

/**
 * Broker error names (kafkajs `type`) that refuse a record for its content: sending it again
 * can never succeed. Everything else (leadership changes, timeouts, a disconnected broker) is
 * kafkajs's to retry and, failing that, the stage's.
 */
const REFUSALS = new Set([
  'MESSAGE_TOO_LARGE',
  'RECORD_LIST_TOO_LARGE',
  'INVALID_RECORD',
  'CORRUPT_MESSAGE',
  'INVALID_TIMESTAMP',
  'UNSUPPORTED_COMPRESSION_TYPE',
  'UNSUPPORTED_FOR_MESSAGE_FORMAT',
]);

/** The broker's refusal code when `err` (or a cause of it) refuses the records for their content, else null. */
export function refusalOf(err: unknown): string | null {
  for (let e = err as { type?: unknown; cause?: unknown; originalError?: unknown } | undefined, depth = 0; e && depth < 8; depth++) {
    if (typeof e.type === 'string' && REFUSALS.has(e.type)) return e.type;
    e = (e.cause ?? e.originalError) as typeof e;
  }
  return null;
}

export interface BatchingProducerOptions {
  /**
   * Longest a record waits for company when no batch is in flight (default 0: only records sent
   * in the same I/O phase). Under load batches form while one is in flight, so a linger buys
   * little there, and at rest it is pure latency on every hop of a message.
   */
  lingerMs?: number;
  /** Send as soon as this many records are waiting (default 1000). */
  maxBatchRecords?: number;
  /**
   * Send before the waiting records' keys and values exceed this many bytes (default 768 KiB),
   * so one batch stays under the broker's `max.message.bytes` (1 MiB by default) even when all
   * its records land on one partition. A larger record goes out on its own.
   */
  maxBatchBytes?: number;
  /** Batches sent before the first is acked (default 1); the rest wait, merging, in the queue. */
  maxInFlightBatches?: number;
  /**
   * Makes a fresh, connected producer (a new idempotent producer id). When the broker refuses
   * one partition of a merged batch it still stores the others, while kafkajs rewinds their
   * sequence numbers: the idempotent producer could never write to those partitions again. So
   * before the records are sent again one by one, the producer is replaced (the old one is
   * disconnected); records that were stored may then be written twice (at-least-once).
   */
  renew?: () => Promise<Producer>;
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
  /** The batch being filled. */
  private queue: Waiting[] = [];
  private queuedBytes = 0;
  /** Full batches waiting for an in-flight one to be acked, oldest first. */
  private sealed: Waiting[][] = [];
  private timer?: NodeJS.Timeout;
  private immediate?: NodeJS.Immediate;
  private inFlight = new Set<Promise<void>>();
  private readonly lingerMs: number;
  private readonly maxBatch: number;
  private readonly maxBytes: number;
  private readonly maxInFlight: number;
  private readonly renew?: () => Promise<Producer>;

  constructor(
    private producer: Producer,
    opts: BatchingProducerOptions = {},
  ) {
    this.renew = opts.renew;
    this.lingerMs = opts.lingerMs ?? 0;
    this.maxBatch = opts.maxBatchRecords ?? 1000;
    this.maxBytes = opts.maxBatchBytes ?? 768 * 1024;
    this.maxInFlight = Math.max(1, opts.maxInFlightBatches ?? 1);
  }

  /** Resolves once the record is durably acknowledged (acks=-1). */
  send(topic: string, message: Message): Promise<SendResult> {
    // The trace context is taken here, in the caller's context: the batch is sent from a timer.
    const traced = traceProducedRecord(topic, message);
    const size = sizeOf(traced.message);
    return new Promise<RecordMetadata>((resolve, reject) => {
      if (this.queuedBytes > 0 && this.queuedBytes + size > this.maxBytes) this.seal();
      this.queue.push({ topic, message: traced.message, resolve, reject });
      this.queuedBytes += size;
      if (this.queue.length >= this.maxBatch || this.queuedBytes >= this.maxBytes) this.seal();
      else if (this.inFlight.size < this.maxInFlight) this.scheduleSeal();
      // else: the batch goes out when the one in flight is acked (pump).
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

  /**
   * Loads the partition metadata of `topics` before the first send: kafkajs fetches a topic's
   * metadata on its first send to it, one more broker round trip (and a lazy module load) on the
   * first message through each hop after a start. A send of no records does only that. A failure
   * is ignored and the wait bounded (kafkajs retries a topic it finds no metadata for for seconds):
   * the first real send fetches the metadata as before.
   */
  async warm(topics: string[], limitMs = 1000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<void>((resolve) => (timer = setTimeout(resolve, limitMs)));
    const loaded = this.producer.sendBatch({ acks: -1, topicMessages: topics.map((topic) => ({ topic, messages: [] })) }).then(
      () => undefined,
      () => undefined,
    );
    await Promise.race([loaded, limit]).finally(() => clearTimeout(timer));
  }

  /** Sends many records as one unit; resolves when all are acked. */
  sendMany(records: Array<{ topic: string; message: Message }>): Promise<SendResult[]> {
    return Promise.all(records.map((r) => this.send(r.topic, r.message)));
  }

  /**
   * Seals the batch after the linger. `lingerMs: 0` seals once the current I/O phase is over
   * (setImmediate), not after setTimeout's 1 ms minimum: records sent in the same tick, such as
   * a record and its event, still go out together.
   */
  private scheduleSeal(): void {
    if (this.timer || this.immediate) return;
    if (this.lingerMs > 0) this.timer = setTimeout(() => this.seal(), this.lingerMs);
    else this.immediate = setImmediate(() => this.seal());
  }

  /** Closes the batch being filled (it is full, or its linger is over) and sends what may go. */
  private seal(): void {
    const batch = this.take();
    if (batch.length > 0) this.sealed.push(batch);
    this.pump();
  }

  /** Sends sealed batches while fewer than `maxInFlight` are unacked; on an ack, sends what waited. */
  private pump(): void {
    while (this.inFlight.size < this.maxInFlight) {
      // What arrived during the last round trip has waited long enough: no second linger.
      const batch = this.sealed.shift() ?? (this.queue.length > 0 ? this.take() : undefined);
      if (!batch) return;
      const p: Promise<void> = this.sendBatch(batch).finally(() => {
        this.inFlight.delete(p);
        this.pump();
      });
      this.inFlight.add(p);
    }
  }

  /** The batch being filled, emptied for the next one (its linger timer cancelled). */
  private take(): Waiting[] {
    clearTimeout(this.timer);
    this.timer = undefined;
    clearImmediate(this.immediate);
    this.immediate = undefined;
    const batch = this.queue;
    this.queue = [];
    this.queuedBytes = 0;
    return batch;
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
      const code = refusalOf(err);
      if (code === null) {
        for (const w of batch) w.reject(err as Error);
      } else if (batch.length === 1) {
        const [w] = batch;
        w.reject(new PermanentError(code, `${w.topic} refused the record (${sizeOf(w.message)} bytes): ${(err as Error).message}`, { cause: err }));
      } else {
        // kafkajs does not say which record was refused: send each alone, in order, so only
        // that one fails and the others (already merged with it) are written.
        await this.renewProducer();
        for (const w of batch) await this.sendBatch([w]);
      }
    }
  }

  /** Replaces the producer (see `renew`); while that fails, the old one is kept. */
  private async renewProducer(): Promise<void> {
    if (!this.renew) return;
    const old = this.producer;
    try {
      this.producer = await this.renew();
    } catch {
      return;
    }
    await old.disconnect().catch(() => undefined);
  }

  /** Sends what is queued and waits for every batch in flight. */
  async drain(): Promise<void> {
    this.seal();
    while (this.inFlight.size > 0 || this.sealed.length > 0 || this.queue.length > 0) {
      if (this.inFlight.size === 0) this.pump();
      await Promise.allSettled([...this.inFlight]);
    }
  }
}
