/**
 * An independent encoder for Kafka record batches (magic 2), written from the protocol spec
 * rather than from the broker's own code, so tests can hand the broker exactly the bytes a
 * client would send (or deliberately broken ones) without trusting what they test.
 */
import { gzipSync } from 'node:zlib';
import { crc32c } from '@node-rs/crc32';
import { zigzagVarint } from '../../../shared/kafka/undecodable-batches.js';

export interface TestRecord {
  key?: string | Buffer | null;
  value?: string | Buffer | null;
  /** Absolute timestamp (ms); defaults to the batch's base timestamp. */
  timestamp?: number;
  headers?: Array<[string, string | Buffer]>;
}

export interface BatchSpec {
  records: TestRecord[];
  baseOffset?: number;
  baseTimestamp?: number;
  producerId?: number;
  producerEpoch?: number;
  baseSequence?: number;
  compression?: 'none' | 'gzip';
  /** Overrides the header's last offset delta (default records.length - 1). */
  lastOffsetDelta?: number;
  /** Overrides the header's record count (default records.length). */
  recordCount?: number;
}

export { zigzagVarint };

const asBuffer = (v: string | Buffer | null | undefined): Buffer | null => (v === null || v === undefined ? null : Buffer.isBuffer(v) ? v : Buffer.from(v));

function lengthPrefixed(b: Buffer | null): Buffer[] {
  return b === null ? [zigzagVarint(-1)] : [zigzagVarint(b.length), b];
}

export function encodeTestRecord(r: TestRecord, offsetDelta: number, baseTimestamp: number): Buffer {
  const headers = r.headers ?? [];
  const body = Buffer.concat([
    Buffer.from([0]),
    zigzagVarint((r.timestamp ?? baseTimestamp) - baseTimestamp),
    zigzagVarint(offsetDelta),
    ...lengthPrefixed(asBuffer(r.key)),
    ...lengthPrefixed(asBuffer(r.value)),
    zigzagVarint(headers.length),
    ...headers.flatMap(([k, v]) => [...lengthPrefixed(Buffer.from(k)), ...lengthPrefixed(asBuffer(v))]),
  ]);
  return Buffer.concat([zigzagVarint(body.length), body]);
}

/** One record batch, CRC included. */
export function encodeBatch(spec: BatchSpec): Buffer {
  const baseTimestamp = spec.baseTimestamp ?? spec.records[0]?.timestamp ?? Date.now();
  const maxTimestamp = Math.max(baseTimestamp, ...spec.records.map((r) => r.timestamp ?? baseTimestamp));
  let records = Buffer.concat(spec.records.map((r, i) => encodeTestRecord(r, i, baseTimestamp)));
  if (spec.compression === 'gzip') records = gzipSync(records);
  const afterCrc = Buffer.alloc(40);
  afterCrc.writeInt16BE(spec.compression === 'gzip' ? 1 : 0, 0);
  afterCrc.writeInt32BE(spec.lastOffsetDelta ?? spec.records.length - 1, 2);
  afterCrc.writeBigInt64BE(BigInt(baseTimestamp), 6);
  afterCrc.writeBigInt64BE(BigInt(maxTimestamp), 14);
  afterCrc.writeBigInt64BE(BigInt(spec.producerId ?? -1), 22);
  afterCrc.writeInt16BE(spec.producerEpoch ?? -1, 30);
  afterCrc.writeInt32BE(spec.baseSequence ?? -1, 32);
  afterCrc.writeInt32BE(spec.recordCount ?? spec.records.length, 36);
  const crcd = Buffer.concat([afterCrc, records]);
  const head = Buffer.alloc(21);
  head.writeBigInt64BE(BigInt(spec.baseOffset ?? 0), 0);
  head.writeInt32BE(9 + crcd.length, 8); // leader epoch (4) + magic (1) + crc (4) + rest
  head.writeInt32BE(0, 12);
  head.writeInt8(2, 16);
  head.writeUInt32BE(crc32c(crcd), 17);
  return Buffer.concat([head, crcd]);
}
