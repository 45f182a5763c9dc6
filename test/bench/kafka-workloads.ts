/**
 * The kafkajs workloads of the broker benchmark: batched produce throughput, consume throughput
 * from the beginning of a topic, and produce latency at a fixed rate. Each is bounded by a
 * record count and a time limit; a run that hits its limit says so.
 */
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, Partitioners, logLevel, type ISocketFactory, type Message } from 'kafkajs';
import { Deadline, ownCpuSeconds, withTimeout } from './bench-timing.js';
import { BACKLOG_SECONDS, closedLoop, openLoop, type OpenLoopResult } from './load-shapes.js';

/**
 * kafkajs's own socket factory leaves Nagle's algorithm on, so a small request written while
 * an earlier one is unacknowledged waits in the kernel. This one sets TCP_NODELAY, as
 * librdkafka and the Java client do.
 */
const noDelaySockets: ISocketFactory = ({ host, port, onConnect }) => {
  const socket = net.connect({ host, port, noDelay: true }, onConnect);
  socket.setKeepAlive(true, 60_000);
  return socket;
};

export interface BenchKafkaOptions {
  /** Use a socket factory with TCP_NODELAY instead of kafkajs's default (Nagle on). */
  noDelay?: boolean;
}

export function benchKafka(bootstrap: string, clientId: string, opts: BenchKafkaOptions = {}): Kafka {
  return new Kafka({
    clientId,
    brokers: [bootstrap],
    logLevel: logLevel.ERROR,
    retry: { retries: 2 },
    ...(opts.noDelay ? { socketFactory: noDelaySockets } : {}),
  });
}

/**
 * One partition. `max.message.bytes` is raised as it must be on Kafka too: a batch of 1,000
 * 10 KB records (~10 MB) is over the 1 MiB default.
 */
export async function createTopic(kafka: Kafka, topic: string, maxBatchBytes: number): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({
      topics: [{ topic, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: String(maxBatchBytes) }] }],
      waitForLeaders: true,
    });
  } finally {
    await admin.disconnect();
  }
}

/** `count` messages for partition 0, each with a distinct 12-byte key and one of `payloads` as value. */
export function makeMessages(count: number, payloads: Buffer[]): Message[] {
  return Array.from({ length: count }, (_, i) => ({ key: `msg-${String(i).padStart(8, '0')}`, value: payloads[i % payloads.length], partition: 0 }));
}

export interface ThroughputRun {
  records: number;
  /** Value bytes moved (keys and framing not counted). */
  bytes: number;
  seconds: number;
  /** The run stopped at its time limit before reaching its count. */
  truncated: boolean;
  /** CPU seconds used meanwhile by the bench process, and by the broker's (null: the same one). */
  clientCpuSeconds: number;
  brokerCpuSeconds: number | null;
}

export interface ProduceThroughputOptions {
  topic: string;
  /** The records of one `send()`, reused for every send. */
  batch: Message[];
  batches: number;
  /** Sends in flight at once from the one producer. */
  inFlight: number;
  timeLimitMs: number;
  signal: AbortSignal;
  brokerCpu: () => number | null;
}

export async function produceThroughput(kafka: Kafka, o: ProduceThroughputOptions): Promise<ThroughputRun> {
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
  await producer.connect();
  const batchBytes = o.batch.reduce((n, m) => n + (m.value as Buffer).length, 0);
  try {
    // A warm-up send, so connecting and fetching metadata are not timed.
    await producer.send({ topic: o.topic, acks: -1, messages: o.batch });
    const cpu0 = ownCpuSeconds();
    const broker0 = o.brokerCpu();
    const r = await closedLoop(o.inFlight, o.batches, new Deadline(o.timeLimitMs, o.signal), async () => {
      await producer.send({ topic: o.topic, acks: -1, messages: o.batch });
    });
    return {
      records: r.done * o.batch.length,
      bytes: r.done * batchBytes,
      seconds: r.seconds,
      truncated: r.truncated,
      clientCpuSeconds: ownCpuSeconds() - cpu0,
      brokerCpuSeconds: cpuDelta(broker0, o.brokerCpu()),
    };
  } finally {
    await producer.disconnect();
  }
}

export interface ConsumeThroughputOptions {
  topic: string;
  /** Records to read from the beginning of the topic. */
  records: number;
  timeLimitMs: number;
  signal: AbortSignal;
  brokerCpu: () => number | null;
}

/**
 * A fresh consumer group reads the topic from the beginning with `eachBatch` (kafkajs defaults:
 * 1 MiB per partition per fetch). The clock starts when the group is joined, so group set-up is
 * not counted as reading time.
 */
export async function consumeThroughput(kafka: Kafka, o: ConsumeThroughputOptions): Promise<ThroughputRun> {
  const consumer = kafka.consumer({ groupId: `bench-${o.topic}-${Math.random().toString(36).slice(2, 8)}`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  let records = 0;
  let bytes = 0;
  let start: { t: number; cpu: number; broker: number | null } | undefined;
  let end = 0;
  consumer.on(consumer.events.GROUP_JOIN, () => {
    start ??= { t: performance.now(), cpu: ownCpuSeconds(), broker: o.brokerCpu() };
  });
  try {
    await consumer.subscribe({ topic: o.topic, fromBeginning: true });
    const deadline = new Deadline(o.timeLimitMs, o.signal);
    let finish: () => void = () => undefined;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    await consumer.run({
      eachBatchAutoResolve: true,
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) bytes += m.value?.length ?? 0;
        records += batch.messages.length;
        if (records >= o.records || deadline.passed) {
          end ||= performance.now();
          finish();
        }
      },
    });
    await Promise.race([finished, sleep(deadline.remainingMs + 1, undefined, { ref: false })]);
    end ||= performance.now();
    return {
      records,
      bytes,
      seconds: start ? (end - start.t) / 1000 : Number.NaN,
      truncated: records < o.records,
      clientCpuSeconds: start ? ownCpuSeconds() - start.cpu : Number.NaN,
      brokerCpuSeconds: cpuDelta(start?.broker ?? null, o.brokerCpu()),
    };
  } finally {
    await withTimeout(consumer.disconnect(), 15_000, 'consumer disconnect');
  }
}

export interface LatencyRun extends OpenLoopResult {
  clientCpuSeconds: number;
  brokerCpuSeconds: number | null;
}

export interface PacedProduceOptions {
  topic: string;
  /** Records per second across the whole run. */
  rate: number;
  durationMs: number;
  /** Records in each `send()` (1: every record is its own produce request). */
  recordsPerSend: number;
  value: Buffer;
  signal: AbortSignal;
  brokerCpu: () => number | null;
}

/** acks=-1 sends on a fixed schedule; latency runs from each send's scheduled time to its ack. */
export async function pacedProduceLatency(kafka: Kafka, o: PacedProduceOptions): Promise<LatencyRun> {
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
  await producer.connect();
  const messages: Message[] = Array.from({ length: o.recordsPerSend }, (_, i) => ({ key: `msg-${i}`, value: o.value, partition: 0 }));
  try {
    await producer.send({ topic: o.topic, acks: -1, messages });
    const cpu0 = ownCpuSeconds();
    const broker0 = o.brokerCpu();
    const sendsPerSecond = o.rate / o.recordsPerSend;
    const r = await openLoop({ rate: sendsPerSecond, durationMs: o.durationMs, maxOutstanding: sendsPerSecond * BACKLOG_SECONDS, signal: o.signal }, async () => {
      await producer.send({ topic: o.topic, acks: -1, messages });
    });
    return { ...r, achievedRate: r.achievedRate * o.recordsPerSend, clientCpuSeconds: ownCpuSeconds() - cpu0, brokerCpuSeconds: cpuDelta(broker0, o.brokerCpu()) };
  } finally {
    await producer.disconnect();
  }
}

export function cpuDelta(before: number | null, after: number | null): number | null {
  return before === null || after === null ? null : after - before;
}
