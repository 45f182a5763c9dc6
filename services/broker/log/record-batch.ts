/**
 * Record batches (magic 2) as Kafka stores them. The broker keeps batches exactly as producers
 * sent them and only rewrites the base offset, which lies outside the CRC. Records inside a
 * batch are decoded only where the broker must look at them: validation on produce, compaction
 * (keys) and offset look-up by timestamp; every Kafka codec (gzip, snappy, lz4, zstd) is decoded.
 */
import { crc32c } from '@node-rs/crc32';
import { CodecError, decompress } from '../../../shared/kafka/codecs.js';

export const BATCH_HEADER_SIZE = 61;
/** Bytes before `batchLength` counts: baseOffset (8) + batchLength (4). */
export const LOG_OVERHEAD = 12;

const OFF_LENGTH = 8;
const OFF_MAGIC = 16;
const OFF_CRC = 17;
const OFF_ATTRIBUTES = 21;
const OFF_LAST_OFFSET_DELTA = 23;
const OFF_BASE_TIMESTAMP = 27;
const OFF_MAX_TIMESTAMP = 35;
const OFF_PRODUCER_ID = 43;
const OFF_PRODUCER_EPOCH = 51;
const OFF_BASE_SEQUENCE = 53;
const OFF_RECORD_COUNT = 57;

export const Compression = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 } as const;

/** A batch that cannot be stored: bad framing, wrong magic or a CRC mismatch. */
export class CorruptBatchError extends Error {
  readonly code: 'CORRUPT_MESSAGE' | 'INVALID_RECORD' = 'CORRUPT_MESSAGE';
  constructor(message: string) {
    super(message);
    this.name = 'CorruptBatchError';
  }
}

/** A batch whose CRC is fine but whose header is not one a producer may send (INVALID_RECORD). */
export class InvalidBatchError extends CorruptBatchError {
  override readonly code = 'INVALID_RECORD';
  constructor(message: string) {
    super(message);
    this.name = 'InvalidBatchError';
  }
}

export interface BatchInfo {
  /** Position of the batch within the buffer it was parsed from. */
  position: number;
  /** Total bytes, header included. */
  size: number;
  baseOffset: number;
  lastOffsetDelta: number;
  attributes: number;
  baseTimestamp: number;
  maxTimestamp: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  recordCount: number;
}

export function readBatchInfo(buf: Buffer, position: number): BatchInfo {
  const size = LOG_OVERHEAD + buf.readInt32BE(position + OFF_LENGTH);
  return {
    position,
    size,
    baseOffset: Number(buf.readBigInt64BE(position)),
    lastOffsetDelta: buf.readInt32BE(position + OFF_LAST_OFFSET_DELTA),
    attributes: buf.readInt16BE(position + OFF_ATTRIBUTES),
    baseTimestamp: Number(buf.readBigInt64BE(position + OFF_BASE_TIMESTAMP)),
    maxTimestamp: Number(buf.readBigInt64BE(position + OFF_MAX_TIMESTAMP)),
    producerId: Number(buf.readBigInt64BE(position + OFF_PRODUCER_ID)),
    producerEpoch: buf.readInt16BE(position + OFF_PRODUCER_EPOCH),
    baseSequence: buf.readInt32BE(position + OFF_BASE_SEQUENCE),
    recordCount: buf.readInt32BE(position + OFF_RECORD_COUNT),
  };
}

/**
 * Splits a produced record set into batches and checks each one: framing, magic 2, a CRC-32C
 * over everything after the CRC field, and a sane record count. Throws CorruptBatchError.
 */
export function validateBatches(buf: Buffer): BatchInfo[] {
  const out: BatchInfo[] = [];
  let pos = 0;
  while (pos < buf.length) {
    if (buf.length - pos < BATCH_HEADER_SIZE) throw new CorruptBatchError(`truncated batch header at ${pos}`);
    const magic = buf.readInt8(pos + OFF_MAGIC);
    if (magic !== 2) throw new CorruptBatchError(`unsupported magic ${magic} (only record batches v2)`);
    const batchLength = buf.readInt32BE(pos + OFF_LENGTH);
    const size = LOG_OVERHEAD + batchLength;
    if (batchLength < BATCH_HEADER_SIZE - LOG_OVERHEAD || pos + size > buf.length) {
      throw new CorruptBatchError(`batch length ${batchLength} does not fit the record set`);
    }
    const expected = buf.readUInt32BE(pos + OFF_CRC);
    const actual = crc32c(buf.subarray(pos + OFF_ATTRIBUTES, pos + size));
    if (expected !== actual) throw new CorruptBatchError(`CRC mismatch: batch says ${expected}, data is ${actual}`);
    const info = readBatchInfo(buf, pos);
    // Producers number records 0..n-1; anything else would let one batch claim offsets it has
    // no records for (up to 2^31 of them), which breaks offset arithmetic. Kafka refuses it too.
    if (info.recordCount < 1 || info.lastOffsetDelta !== info.recordCount - 1) {
      throw new InvalidBatchError(`record count ${info.recordCount} and last offset delta ${info.lastOffsetDelta} are inconsistent`);
    }
    try {
      validateRecords(buf, info);
    } catch (err) {
      // A truncated varint inside a CRC-valid batch is a malformed record, not line noise.
      throw err instanceof InvalidBatchError ? err : new InvalidBatchError((err as Error).message);
    }
    out.push(info);
    pos += size;
  }
  return out;
}

/**
 * Walks batch framing without checking CRCs (log reads, where data was validated on the way
 * in). Stops at the first incomplete batch and reports where the whole batches end.
 */
export function scanBatches(buf: Buffer, onBatch: (info: BatchInfo) => boolean | void): number {
  let pos = 0;
  while (buf.length - pos >= BATCH_HEADER_SIZE) {
    const size = LOG_OVERHEAD + buf.readInt32BE(pos + OFF_LENGTH);
    if (size < BATCH_HEADER_SIZE || pos + size > buf.length) break;
    if (onBatch(readBatchInfo(buf, pos)) === false) return pos + size;
    pos += size;
  }
  return pos;
}

/** Sets the base offset in place; the CRC does not cover it. */
export function setBaseOffset(buf: Buffer, position: number, baseOffset: number): void {
  buf.writeBigInt64BE(BigInt(baseOffset), position);
}

export function batchCrcValid(buf: Buffer, position: number, size: number): boolean {
  if (buf.readInt8(position + OFF_MAGIC) !== 2) return false;
  return buf.readUInt32BE(position + OFF_CRC) === crc32c(buf.subarray(position + OFF_ATTRIBUTES, position + size));
}

// ---- records inside a batch ----

export interface RecordView {
  offset: number;
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  /** The record's encoded bytes (length prefix included), reusable when rewriting a batch. */
  raw: Buffer;
  offsetDelta: number;
}

/** Reads a zig-zag varint at `at.pos`, advancing it. Throws CorruptBatchError when truncated. */
export function readVarint(buf: Buffer, at: { pos: number }): number {
  let result = 0;
  let shift = 0;
  for (;;) {
    if (at.pos >= buf.length) throw new CorruptBatchError('truncated varint');
    const b = buf[at.pos++];
    result += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) break;
    shift += 7;
    if (shift > 63) throw new CorruptBatchError('varint too long');
  }
  // zig-zag
  return result % 2 === 0 ? result / 2 : -(result + 1) / 2;
}

/** Appends `value` as a zig-zag varint. */
export function writeVarint(value: number, out: number[]): void {
  let v = value >= 0 ? value * 2 : -value * 2 - 1;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
}

/** Decodes the records of one batch, decompressing them first when the batch is compressed. */
export function readRecords(batch: Buffer, info: BatchInfo, position = info.position): RecordView[] {
  const body = recordsBody(batch, info, position);
  const out: RecordView[] = [];
  const at = { pos: 0 };
  for (let i = 0; i < info.recordCount; i++) {
    const start = at.pos;
    const length = readVarint(body, at);
    const end = at.pos + length;
    if (end > body.length) throw new CorruptBatchError('record overruns its batch');
    at.pos += 1; // attributes
    const timestampDelta = readVarint(body, at);
    const offsetDelta = readVarint(body, at);
    const keyLen = readVarint(body, at);
    if (at.pos + Math.max(keyLen, 0) > end) throw new CorruptBatchError('record key overruns its record');
    const key = keyLen < 0 ? null : body.subarray(at.pos, at.pos + keyLen);
    if (keyLen > 0) at.pos += keyLen;
    const valueLen = readVarint(body, at);
    if (at.pos + Math.max(valueLen, 0) > end) throw new CorruptBatchError('record value overruns its record');
    const value = valueLen < 0 ? null : body.subarray(at.pos, at.pos + valueLen);
    at.pos = end;
    out.push({
      offset: info.baseOffset + offsetDelta,
      offsetDelta,
      timestamp: info.baseTimestamp + timestampDelta,
      key,
      value,
      raw: body.subarray(start, end),
    });
  }
  return out;
}

/** Largest decompressed record set the broker will inflate (a guard against gzip bombs). */
export const MAX_DECOMPRESSED_BYTES = 128 * 1024 * 1024;

/** The encoded records of a batch, decompressed; codec ids 5-7 (none exists) are reported. */
function recordsBody(batch: Buffer, info: BatchInfo, position: number): Buffer {
  const codec = info.attributes & 0x07;
  const body = batch.subarray(position + BATCH_HEADER_SIZE, position + info.size);
  if (codec === Compression.none) return body;
  if (codec > Compression.zstd) throw new UnsupportedCodecError(codec);
  try {
    return decompress(codec, body, MAX_DECOMPRESSED_BYTES);
  } catch (err) {
    if (!(err instanceof CodecError)) throw err;
    throw new CorruptBatchError(err.message);
  }
}

/**
 * Checks the records inside a produced batch the way Kafka does before storing it: each record
 * lies within the batch, offset deltas run 0..n-1 and nothing trails the last record.
 * Compressed batches are decompressed to check them, so a batch no consumer could decode is
 * refused at the door. A batch that passed the CRC check but fails here would break every consumer.
 */
export function validateRecords(batch: Buffer, info: BatchInfo, position = info.position): void {
  let body: Buffer;
  try {
    body = recordsBody(batch, info, position);
  } catch (err) {
    throw new InvalidBatchError((err as Error).message);
  }
  const at = { pos: 0 };
  for (let i = 0; i < info.recordCount; i++) {
    const length = readVarint(body, at);
    const end = at.pos + length;
    if (length < 0 || end > body.length) throw new InvalidBatchError(`record ${i} overruns its batch`);
    at.pos += 1; // attributes
    readVarint(body, at); // timestamp delta
    if (readVarint(body, at) !== i) throw new InvalidBatchError(`record ${i} has a wrong offset delta`);
    if (at.pos > end) throw new InvalidBatchError(`record ${i} is shorter than its header`);
    at.pos = end;
  }
  if (at.pos !== body.length) throw new InvalidBatchError(`${body.length - at.pos} bytes follow the last of ${info.recordCount} records`);
}

export class UnsupportedCodecError extends Error {
  readonly code = 'UNSUPPORTED_CODEC';
  constructor(readonly codec: number) {
    super(`compression codec ${codec} does not exist`);
    this.name = 'UnsupportedCodecError';
  }
}

/**
 * Builds an uncompressed batch from records kept out of `original` (compaction). Offsets,
 * timestamps and producer fields are preserved; only the record list and CRC change.
 */
export function rebuildBatch(original: BatchInfo, records: RecordView[]): Buffer {
  const body = Buffer.concat(records.map((r) => r.raw));
  const buf = Buffer.alloc(BATCH_HEADER_SIZE + body.length);
  buf.writeBigInt64BE(BigInt(original.baseOffset), 0);
  buf.writeInt32BE(buf.length - LOG_OVERHEAD, OFF_LENGTH);
  buf.writeInt32BE(0, 12); // partition leader epoch
  buf.writeInt8(2, OFF_MAGIC);
  buf.writeInt16BE(original.attributes & ~0x07, OFF_ATTRIBUTES);
  buf.writeInt32BE(original.lastOffsetDelta, OFF_LAST_OFFSET_DELTA);
  buf.writeBigInt64BE(BigInt(original.baseTimestamp), OFF_BASE_TIMESTAMP);
  buf.writeBigInt64BE(BigInt(original.maxTimestamp), OFF_MAX_TIMESTAMP);
  buf.writeBigInt64BE(BigInt(original.producerId), OFF_PRODUCER_ID);
  buf.writeInt16BE(original.producerEpoch, OFF_PRODUCER_EPOCH);
  buf.writeInt32BE(original.baseSequence, OFF_BASE_SEQUENCE);
  buf.writeInt32BE(records.length, OFF_RECORD_COUNT);
  body.copy(buf, BATCH_HEADER_SIZE);
  buf.writeUInt32BE(crc32c(buf.subarray(OFF_ATTRIBUTES)), OFF_CRC);
  return buf;
}

/** Encodes one record (for tests and tools that build batches without a client). */
export function encodeRecord(offsetDelta: number, timestampDelta: number, key: Buffer | null, value: Buffer | null): Buffer {
  const head: number[] = [0];
  writeVarint(timestampDelta, head);
  writeVarint(offsetDelta, head);
  const keyLen: number[] = [];
  writeVarint(key ? key.length : -1, keyLen);
  const valueLen: number[] = [];
  writeVarint(value ? value.length : -1, valueLen);
  const headers: number[] = [];
  writeVarint(0, headers);
  const parts = [Buffer.from(head), Buffer.from(keyLen), key ?? Buffer.alloc(0), Buffer.from(valueLen), value ?? Buffer.alloc(0), Buffer.from(headers)];
  const bodyLength = parts.reduce((n, p) => n + p.length, 0);
  const len: number[] = [];
  writeVarint(bodyLength, len);
  return Buffer.concat([Buffer.from(len), ...parts]);
}
