/**
 * A produce client that costs the benchmark almost nothing: the Produce request is encoded once
 * (by kafkajs's own encoder, so the bytes on the wire are the ones kafkajs sends) and then
 * written again and again with only the correlation id changed. Measuring the broker with it
 * separates what the broker and the disk can do from what kafkajs can do.
 *
 * Non-idempotent (producer id -1), so the broker stores every copy as new records.
 */
import net from 'node:net';
import { createRequire } from 'node:module';
import type { Message } from 'kafkajs';
import { Deadline, ownCpuSeconds } from './bench-timing.js';
import { BACKLOG_SECONDS, closedLoop, openLoop, type OpenLoopResult } from './load-shapes.js';
import { cpuDelta, type ThroughputRun } from './kafka-workloads.js';
import { Reader } from '../../services/broker/protocol/primitives.js';
import { decode } from '../../services/broker/protocol/schema.js';
import { API_BY_KEY, ApiKey } from '../../services/broker/protocol/apis.js';

const require = createRequire(import.meta.url);

interface KafkajsEncoder {
  buffer: Buffer;
}
interface KafkajsRequest {
  apiKey: number;
  apiVersion: number;
  encode(): Promise<unknown>;
}
type EncodeFrame = (r: { correlationId: number; clientId: string; request: KafkajsRequest }) => Promise<KafkajsEncoder>;
type ProduceV7 = (r: { acks: number; timeout: number; compression: number; topicData: unknown[] }) => KafkajsRequest;

const encodeFrame = require('kafkajs/src/protocol/request.js') as EncodeFrame;
const produceV7 = require('kafkajs/src/protocol/requests/produce/v7/request.js') as ProduceV7;

const PRODUCE_VERSION = 7;
/** Bytes before the correlation id: size (4), api key (2), api version (2). */
const CORRELATION_AT = 8;

/** A whole Produce v7 frame (size prefix included) for `messages` on partition 0, as kafkajs encodes it. */
export async function encodeProduceFrame(topic: string, messages: Message[], acks = -1): Promise<Buffer> {
  const request = produceV7({ acks, timeout: 30_000, compression: 0, topicData: [{ topic, partitions: [{ partition: 0, messages }] }] });
  return (await encodeFrame({ correlationId: 0, clientId: 'bench-pre-encoded', request })).buffer;
}

export class PreEncodedProducer {
  private nextId = 1;
  private pending = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  private parts: Buffer[] = [];
  private buffered = 0;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => this.onData(d));
    const failAll = (err: Error): void => {
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    socket.on('error', failAll);
    socket.on('close', () => failAll(new Error('connection closed')));
  }

  static connect(bootstrap: string): Promise<PreEncodedProducer> {
    const [host, port] = bootstrap.split(':');
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port: Number(port), noDelay: true }, () => {
        socket.off('error', reject);
        resolve(new PreEncodedProducer(socket));
      });
      socket.once('error', reject);
    });
  }

  /** Sends `frame` (from `encodeProduceFrame`) under a fresh correlation id; resolves on an error-free response. */
  send(frame: Buffer): Promise<void> {
    const id = this.nextId++;
    // The large body is shared by every send and never modified; only the 12-byte head is new.
    const head = Buffer.from(frame.subarray(0, CORRELATION_AT + 4));
    head.writeInt32BE(id, CORRELATION_AT);
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.socket.cork();
      this.socket.write(head);
      this.socket.write(frame.subarray(CORRELATION_AT + 4));
      this.socket.uncork();
    });
  }

  private onData(d: Buffer): void {
    this.parts.push(d);
    this.buffered += d.length;
    while (this.buffered >= 4) {
      if (this.parts[0].length < 4) this.parts = [Buffer.concat(this.parts)];
      const size = this.parts[0].readInt32BE(0);
      if (this.buffered < 4 + size) return;
      const all = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts);
      const frame = all.subarray(4, 4 + size);
      const rest = all.subarray(4 + size);
      this.parts = rest.length ? [rest] : [];
      this.buffered = rest.length;
      this.onResponse(frame);
    }
  }

  private onResponse(frame: Buffer): void {
    const r = new Reader(frame);
    const id = r.int32();
    const waiter = this.pending.get(id);
    if (!waiter) return;
    this.pending.delete(id);
    const body = decode(API_BY_KEY.get(ApiKey.Produce)!.response, PRODUCE_VERSION, r);
    const codes = (body.responses as Array<{ partitionResponses: Array<{ errorCode: number }> }>).flatMap((t) => t.partitionResponses.map((p) => p.errorCode));
    const bad = codes.find((c) => c !== 0);
    if (bad === undefined) waiter.resolve();
    else waiter.reject(new Error(`produce failed with Kafka error code ${bad}`));
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Closed-loop produce of one pre-encoded frame, `inFlight` at a time. */
export async function preEncodedThroughput(
  bootstrap: string,
  o: { frame: Buffer; records: number; bytes: number; batches: number; inFlight: number; timeLimitMs: number; signal: AbortSignal; brokerCpu: () => number | null },
): Promise<ThroughputRun> {
  const producer = await PreEncodedProducer.connect(bootstrap);
  try {
    await producer.send(o.frame);
    const cpu0 = ownCpuSeconds();
    const broker0 = o.brokerCpu();
    const r = await closedLoop(o.inFlight, o.batches, new Deadline(o.timeLimitMs, o.signal), () => producer.send(o.frame));
    return {
      records: r.done * o.records,
      bytes: r.done * o.bytes,
      seconds: r.seconds,
      truncated: r.truncated,
      clientCpuSeconds: ownCpuSeconds() - cpu0,
      brokerCpuSeconds: cpuDelta(broker0, o.brokerCpu()),
    };
  } finally {
    producer.close();
  }
}

/** Open-loop produce of one pre-encoded frame at `rate` records/s; latency from scheduled send to ack. */
export async function preEncodedLatency(
  bootstrap: string,
  o: { frame: Buffer; rate: number; durationMs: number; recordsPerSend: number; signal: AbortSignal; brokerCpu: () => number | null },
): Promise<OpenLoopResult & { clientCpuSeconds: number; brokerCpuSeconds: number | null }> {
  const producer = await PreEncodedProducer.connect(bootstrap);
  try {
    await producer.send(o.frame);
    const cpu0 = ownCpuSeconds();
    const broker0 = o.brokerCpu();
    const sendsPerSecond = o.rate / o.recordsPerSend;
    const r = await openLoop({ rate: sendsPerSecond, durationMs: o.durationMs, maxOutstanding: sendsPerSecond * BACKLOG_SECONDS, signal: o.signal }, () => producer.send(o.frame));
    return { ...r, achievedRate: r.achievedRate * o.recordsPerSend, clientCpuSeconds: ownCpuSeconds() - cpu0, brokerCpuSeconds: cpuDelta(broker0, o.brokerCpu()) };
  } finally {
    producer.close();
  }
}
