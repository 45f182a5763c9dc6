/**
 * Record batches (magic 2) as Kafka stores them. The broker keeps batches exactly as producers
 * sent them and only rewrites the base offset, which lies outside the CRC. Records inside a
 * batch are decoded only where the broker must look at them: compaction (keys) and offset look-up
 * by timestamp.
 */
import { gunzipSync } from 'node:zlib';
import { crc32c } from '@node-rs/crc32';

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
  readonly code = 'CORRUPT_MESSAGE';
  constructor(message: string) {
    super(message);
    this.name = 'CorruptBatchError';
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
    if (info.recordCount < 0 || info.lastOffsetDelta < 0 || info.lastOffsetDelta < info.recordCount - 1) {
      throw new CorruptBatchError(`record count ${info.recordCount} / last offset delta ${info.lastOffsetDelta} inconsistent`);
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

function readVarint(buf: Buffer, at: { pos: number }): number {
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

function writeVarint(value: number, out: number[]): void {
  let v = value >= 0 ? value * 2 : -value * 2 - 1;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
}

/** Decodes the records of one batch (gzip is decompressed; other codecs are reported). */
export function readRecords(batch: Buffer, info: BatchInfo, position = info.position): RecordView[] {
  const codec = info.attributes & 0x07;
  let body = batch.subarray(position + BATCH_HEADER_SIZE, position + info.size);
  if (codec === Compression.gzip) body = gunzipSync(body);
  else if (codec !== Compression.none) throw new UnsupportedCodecError(codec);
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
    const key = keyLen < 0 ? null : body.subarray(at.pos, at.pos + keyLen);
    if (keyLen > 0) at.pos += keyLen;
    const valueLen = readVarint(body, at);
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

export class UnsupportedCodecError extends Error {
  readonly code = 'UNSUPPORTED_CODEC';
  constructor(readonly codec: number) {
    super(`compression codec ${codec} is not decoded by the broker`);
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
