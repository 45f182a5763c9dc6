/**
 * Kafka wire primitives: a bounds-checked reader over one request frame and a writer that
 * collects small fields into a growing buffer but passes large record sets through as their
 * own chunks, so a Fetch response never copies log data it read from disk.
 */

/** Thrown when a frame is shorter than its fields say or a length is negative where it may not be. */
export class ProtocolError extends Error {
  readonly code = 'PROTOCOL_ERROR';
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

export class Reader {
  offset: number;
  constructor(readonly buf: Buffer, offset = 0) {
    this.offset = offset;
  }

  get remaining(): number {
    return this.buf.length - this.offset;
  }

  private need(n: number): number {
    const at = this.offset;
    if (n < 0 || at + n > this.buf.length) {
      throw new ProtocolError(`frame truncated: need ${n} bytes at ${at}, have ${this.buf.length - at}`);
    }
    this.offset = at + n;
    return at;
  }

  int8(): number {
    return this.buf.readInt8(this.need(1));
  }
  int16(): number {
    return this.buf.readInt16BE(this.need(2));
  }
  int32(): number {
    return this.buf.readInt32BE(this.need(4));
  }
  uint32(): number {
    return this.buf.readUInt32BE(this.need(4));
  }
  /** int64 as a JS number: offsets, timestamps and producer ids stay far below 2^53. */
  int64(): number {
    return Number(this.buf.readBigInt64BE(this.need(8)));
  }
  bool(): boolean {
    return this.int8() !== 0;
  }
  nstring(): string | null {
    const len = this.int16();
    if (len < 0) return null;
    const at = this.need(len);
    return this.buf.toString('utf8', at, at + len);
  }
  string(): string {
    const s = this.nstring();
    if (s === null) throw new ProtocolError('null where a string is required');
    return s;
  }
  nbytes(): Buffer | null {
    const len = this.int32();
    if (len < 0) return null;
    const at = this.need(len);
    return this.buf.subarray(at, at + len);
  }
  bytes(): Buffer {
    return this.nbytes() ?? Buffer.alloc(0);
  }
  /** Array length; -1 means null. A length that cannot fit in the frame is rejected early. */
  arrayLength(): number {
    const len = this.int32();
    if (len < -1 || len > this.remaining) throw new ProtocolError(`bad array length ${len}`);
    return len;
  }
}

const INITIAL = 256;
/** Buffers at least this large are referenced as their own chunk instead of copied. */
const PASS_THROUGH = 4096;

export class Writer {
  private chunks: Buffer[] = [];
  private buf = Buffer.allocUnsafe(INITIAL);
  private pos = 0;
  private flushedLength = 0;

  get length(): number {
    return this.flushedLength + this.pos;
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  int8(v: number): this {
    this.room(1);
    this.pos = this.buf.writeInt8(v, this.pos);
    return this;
  }
  int16(v: number): this {
    this.room(2);
    this.pos = this.buf.writeInt16BE(v, this.pos);
    return this;
  }
  int32(v: number): this {
    this.room(4);
    this.pos = this.buf.writeInt32BE(v, this.pos);
    return this;
  }
  uint32(v: number): this {
    this.room(4);
    this.pos = this.buf.writeUInt32BE(v >>> 0, this.pos);
    return this;
  }
  int64(v: number): this {
    this.room(8);
    this.pos = this.buf.writeBigInt64BE(BigInt(v), this.pos);
    return this;
  }
  bool(v: boolean): this {
    return this.int8(v ? 1 : 0);
  }
  nstring(v: string | null | undefined): this {
    if (v === null || v === undefined) return this.int16(-1);
    const len = Buffer.byteLength(v);
    this.int16(len);
    this.room(len);
    this.pos += this.buf.write(v, this.pos, 'utf8');
    return this;
  }
  /** Raw bytes with no length prefix. */
  raw(b: Buffer): this {
    if (b.length >= PASS_THROUGH) {
      this.seal();
      this.chunks.push(b);
      this.flushedLength += b.length;
    } else {
      this.room(b.length);
      b.copy(this.buf, this.pos);
      this.pos += b.length;
    }
    return this;
  }
  nbytes(v: Buffer | Buffer[] | null | undefined): this {
    if (v === null || v === undefined) return this.int32(-1);
    const parts = Array.isArray(v) ? v : [v];
    let total = 0;
    for (const p of parts) total += p.length;
    this.int32(total);
    for (const p of parts) this.raw(p);
    return this;
  }

  /** Moves what is buffered into the chunk list. */
  private seal(): void {
    if (this.pos === 0) return;
    this.chunks.push(this.buf.subarray(0, this.pos));
    this.flushedLength += this.pos;
    this.buf = Buffer.allocUnsafe(INITIAL);
    this.pos = 0;
  }

  /** The encoded bytes as chunks, ready for `socket.cork()`/`write()`. */
  finish(): Buffer[] {
    this.seal();
    return this.chunks;
  }
}
