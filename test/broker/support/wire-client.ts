/**
 * A minimal Kafka wire client for tests that need bytes no real client would send: raw frames,
 * garbage, a request sent twice verbatim. Encoders and decoders are written here from the
 * protocol spec, independently of the broker's own codec.
 */
import net from 'node:net';

export class Enc {
  private parts: Buffer[] = [];
  int8(v: number): this {
    const b = Buffer.alloc(1);
    b.writeInt8(v);
    return this.push(b);
  }
  int16(v: number): this {
    const b = Buffer.alloc(2);
    b.writeInt16BE(v);
    return this.push(b);
  }
  int32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32BE(v);
    return this.push(b);
  }
  int64(v: number): this {
    const b = Buffer.alloc(8);
    b.writeBigInt64BE(BigInt(v));
    return this.push(b);
  }
  string(v: string | null): this {
    if (v === null) return this.int16(-1);
    const s = Buffer.from(v);
    return this.int16(s.length).push(s);
  }
  bytes(v: Buffer | null): this {
    if (v === null) return this.int32(-1);
    return this.int32(v.length).push(v);
  }
  array<T>(items: T[], each: (e: Enc, item: T) => void): this {
    this.int32(items.length);
    for (const item of items) each(this, item);
    return this;
  }
  push(b: Buffer): this {
    this.parts.push(b);
    return this;
  }
  get buffer(): Buffer {
    return Buffer.concat(this.parts);
  }
}

export class Dec {
  pos = 0;
  constructor(readonly buf: Buffer) {}
  int8(): number {
    return this.buf.readInt8((this.pos += 1) - 1);
  }
  int16(): number {
    return this.buf.readInt16BE((this.pos += 2) - 2);
  }
  int32(): number {
    return this.buf.readInt32BE((this.pos += 4) - 4);
  }
  int64(): number {
    return Number(this.buf.readBigInt64BE((this.pos += 8) - 8));
  }
  string(): string | null {
    const n = this.int16();
    if (n < 0) return null;
    return this.buf.toString('utf8', (this.pos += n) - n, this.pos);
  }
  bytes(): Buffer | null {
    const n = this.int32();
    if (n < 0) return null;
    return this.buf.subarray((this.pos += n) - n, this.pos);
  }
  array<T>(each: (d: Dec) => T): T[] {
    const n = this.int32();
    return Array.from({ length: Math.max(n, 0) }, () => each(this));
  }
  get remaining(): number {
    return this.buf.length - this.pos;
  }
}

/** A request frame: size, api key, version, correlation id, client id, body. */
export function frame(apiKey: number, apiVersion: number, correlationId: number, body: Buffer, clientId = 'wire-test'): Buffer {
  const payload = new Enc().int16(apiKey).int16(apiVersion).int32(correlationId).string(clientId).push(body).buffer;
  return new Enc().int32(payload.length).push(payload).buffer;
}

export class WireClient {
  private buffered = Buffer.alloc(0);
  private waiting = new Map<number, (body: Buffer) => void>();
  private nextCorrelation = 1;
  /** Resolves when the broker closes the connection (or it fails). */
  readonly closed: Promise<void>;
  isClosed = false;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (d) => this.onData(d));
    this.closed = new Promise((resolve) => {
      socket.on('close', () => {
        this.isClosed = true;
        resolve();
      });
    });
    socket.on('error', () => undefined);
  }

  static connect(bootstrap: string): Promise<WireClient> {
    const [host, port] = bootstrap.split(':');
    return new Promise((resolve, reject) => {
      const s = net.connect(Number(port), host, () => resolve(new WireClient(s)));
      s.once('error', reject);
    });
  }

  private onData(d: Buffer): void {
    this.buffered = Buffer.concat([this.buffered, d]);
    while (this.buffered.length >= 4) {
      const size = this.buffered.readInt32BE(0);
      if (this.buffered.length < 4 + size) return;
      const correlationId = this.buffered.readInt32BE(4);
      const body = this.buffered.subarray(8, 4 + size);
      this.buffered = this.buffered.subarray(4 + size);
      const resolve = this.waiting.get(correlationId);
      this.waiting.delete(correlationId);
      resolve?.(body);
    }
  }

  /** Sends one request and resolves with the response body (after the correlation id). */
  request(apiKey: number, apiVersion: number, body: Buffer, timeoutMs = 10_000): Promise<Buffer> {
    const id = this.nextCorrelation++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no response to api ${apiKey} v${apiVersion} within ${timeoutMs} ms`)), timeoutMs);
      this.waiting.set(id, (b) => {
        clearTimeout(timer);
        resolve(b);
      });
      void this.closed.then(() => {
        clearTimeout(timer);
        if (this.waiting.delete(id)) reject(new Error('connection closed before the response'));
      });
      this.socket.write(frame(apiKey, apiVersion, id, body));
    });
  }

  /** Sends a request that gets no response (Produce acks=0). */
  requestNoResponse(apiKey: number, apiVersion: number, body: Buffer): void {
    this.socket.write(frame(apiKey, apiVersion, this.nextCorrelation++, body));
  }

  writeRaw(b: Buffer): void {
    this.socket.write(b);
  }

  close(): void {
    this.socket.destroy();
  }
}

// ---- the few requests tests build by hand ----

export const API = { Produce: 0, Fetch: 1, ListOffsets: 2, Metadata: 3, ApiVersions: 18, InitProducerId: 22 } as const;

export interface ProducePartitionResult {
  topic: string;
  partition: number;
  errorCode: number;
  baseOffset: number;
}

/** Produce v3 for one partition. */
export function produceBody(topic: string, partition: number, records: Buffer | null, acks = -1): Buffer {
  return new Enc()
    .string(null)
    .int16(acks)
    .int32(10_000)
    .array([topic], (e) => e.string(topic).array([partition], (p) => p.int32(partition).bytes(records)))
    .buffer;
}

export function parseProduceV3(body: Buffer): ProducePartitionResult[] {
  const d = new Dec(body);
  const out: ProducePartitionResult[] = [];
  d.array((t) => {
    const topic = t.string() as string;
    t.array((p) => {
      const partition = p.int32();
      const errorCode = p.int16();
      const baseOffset = p.int64();
      p.int64(); // log append time
      out.push({ topic, partition, errorCode, baseOffset });
    });
  });
  return out;
}

/** ApiVersions v0: the error code and the number of APIs listed. */
export function parseApiVersionsV0(body: Buffer): { errorCode: number; apis: Array<[number, number, number]> } {
  const d = new Dec(body);
  const errorCode = d.int16();
  const apis = d.array((a) => [a.int16(), a.int16(), a.int16()] as [number, number, number]);
  return { errorCode, apis };
}

/** Metadata v1 for the given topics: topic name → error code. */
export function metadataBody(topics: string[]): Buffer {
  return new Enc().array(topics, (e, t) => e.string(t)).buffer;
}

export function parseMetadataV1(body: Buffer): Map<string, number> {
  const d = new Dec(body);
  d.array((b) => [b.int32(), b.string(), b.int32(), b.string()]);
  d.int32(); // controller
  const out = new Map<string, number>();
  d.array((t) => {
    const errorCode = t.int16();
    const name = t.string() as string;
    t.int8();
    t.array((p) => [p.int16(), p.int32(), p.int32(), p.array((x) => x.int32()), p.array((x) => x.int32())]);
    out.set(name, errorCode);
  });
  return out;
}

/** InitProducerId v0 without a transactional id. */
export function initProducerIdBody(): Buffer {
  return new Enc().string(null).int32(60_000).buffer;
}

export function parseInitProducerIdV0(body: Buffer): { errorCode: number; producerId: number; producerEpoch: number } {
  const d = new Dec(body);
  d.int32(); // throttle
  return { errorCode: d.int16(), producerId: d.int64(), producerEpoch: d.int16() };
}

/** ListOffsets v1 for one partition: timestamp -1 = latest (high watermark), -2 = earliest. */
export function listOffsetsBody(topic: string, partition: number, timestamp: number): Buffer {
  return new Enc().int32(-1).array([topic], (e) => e.string(topic).array([partition], (p) => p.int32(partition).int64(timestamp))).buffer;
}

export function parseListOffsetsV1(body: Buffer): { errorCode: number; timestamp: number; offset: number } {
  const d = new Dec(body);
  let out = { errorCode: -1, timestamp: -1, offset: -1 };
  d.array((t) => {
    t.string();
    t.array((p) => {
      p.int32();
      out = { errorCode: p.int16(), timestamp: p.int64(), offset: p.int64() };
    });
  });
  return out;
}

/** Fetch v4 for one partition (maxWait 0: answer at once). */
export function fetchBody(topic: string, partition: number, offset: number, maxWaitMs = 0, minBytes = 1): Buffer {
  return new Enc()
    .int32(-1)
    .int32(maxWaitMs)
    .int32(minBytes)
    .int32(1 << 20)
    .int8(0)
    .array([topic], (e) => e.string(topic).array([partition], (p) => p.int32(partition).int64(offset).int32(1 << 20)))
    .buffer;
}

export function parseFetchV4(body: Buffer): { errorCode: number; highWatermark: number; records: Buffer } {
  const d = new Dec(body);
  d.int32(); // throttle
  let out: { errorCode: number; highWatermark: number; records: Buffer } = { errorCode: -1, highWatermark: -1, records: Buffer.alloc(0) };
  d.array((t) => {
    t.string();
    t.array((p) => {
      p.int32();
      const errorCode = p.int16();
      const highWatermark = p.int64();
      p.int64(); // last stable offset
      p.array((a) => [a.int64(), a.int64()]);
      out = { errorCode, highWatermark, records: p.bytes() ?? Buffer.alloc(0) };
    });
  });
  return out;
}
