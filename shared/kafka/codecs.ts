/**
 * Kafka's record-batch compression codecs (gzip, snappy, lz4, zstd), decoded the way every
 * Kafka client encodes them, for two users:
 * - kafkajs, which ships only gzip: importing this module registers the other three in its
 *   `CompressionCodecs`, so every Postline client reads what foreign producers send (librdkafka,
 *   the Java client) and can produce with any codec;
 * - the embedded broker, which looks inside batches to validate records, compact and find
 *   offsets by time, and needs the same decoders synchronously and with an output bound.
 *
 * Libraries: snappyjs (pure JS), lz4-napi (LZ4 frames, prebuilt binaries shipped in npm
 * packages), fzstd (pure-JS zstd decoder, streaming so its output can be bounded) and
 * @mongodb-js/zstd 1.x (zstd encoder, prebuilt binaries in npm packages).
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import kafkajs from 'kafkajs';
import snappy from 'snappyjs';
import { compressFrameSync, decompressFrameSync } from 'lz4-napi';
import { Decompress as ZstdDecompress } from 'fzstd';
import { compress as zstdCompress } from '@mongodb-js/zstd';

/** The codec ids of a batch's attributes (bits 0-2). */
export const Codec = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 } as const;
export type CodecId = (typeof Codec)[keyof typeof Codec];

/** Compressed data that does not decode, or decodes to more than the caller allows. */
export class CodecError extends Error {
  readonly code = 'CORRUPT_COMPRESSED_DATA';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CodecError';
  }
}

/** snappy-java's stream framing (the Java client's snappy): a magic header, then sized blocks. */
const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);
const XERIAL_HEADER = 16;

const asBuffer = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

function snappyBlock(block: Buffer, budget: number): Buffer {
  return asBuffer(snappy.uncompress(block, budget));
}

function unsnappy(data: Buffer, maxBytes: number): Buffer {
  if (data.length < XERIAL_HEADER || !data.subarray(0, 8).equals(XERIAL_MAGIC)) return snappyBlock(data, maxBytes);
  const out: Buffer[] = [];
  let total = 0;
  for (let pos = XERIAL_HEADER; pos < data.length; ) {
    if (pos + 4 > data.length) throw new CodecError('snappy: truncated xerial block header');
    const size = data.readUInt32BE(pos);
    pos += 4;
    if (pos + size > data.length) throw new CodecError('snappy: xerial block overruns the data');
    const block = snappyBlock(data.subarray(pos, pos + size), maxBytes - total);
    total += block.length;
    out.push(block);
    pos += size;
  }
  return Buffer.concat(out, total);
}

function unzstd(data: Buffer, maxBytes: number): Buffer {
  const out: Uint8Array[] = [];
  let total = 0;
  const stream = new ZstdDecompress((chunk) => {
    total += chunk.length;
    if (total > maxBytes) throw new CodecError(`zstd: decompresses to more than ${maxBytes} bytes`);
    out.push(chunk);
  });
  stream.push(data, true);
  return Buffer.concat(out, total);
}

/**
 * Decompresses a batch's records. Throws CodecError when the data does not decode or would
 * exceed `maxBytes` (gzip, snappy and zstd are bounded while decoding; LZ4 cannot expand more
 * than about 255 times, which bounds it by the batch size).
 */
export function decompress(codec: number, data: Buffer, maxBytes: number): Buffer {
  try {
    switch (codec) {
      case Codec.none:
        return data;
      case Codec.gzip:
        return gunzipSync(data, { maxOutputLength: maxBytes });
      case Codec.snappy:
        return unsnappy(data, maxBytes);
      case Codec.lz4:
        return decompressFrameSync(data);
      case Codec.zstd:
        return unzstd(data, maxBytes);
      default:
        throw new CodecError(`unknown compression codec ${codec}`);
    }
  } catch (err) {
    if (err instanceof CodecError) throw err;
    throw new CodecError(`${codecName(codec)} records do not decompress: ${(err as Error).message}`, { cause: err });
  }
}

/** Compresses records with `codec` the way Kafka clients do (raw snappy, LZ4 frame, zstd frame). */
export async function compress(codec: number, data: Buffer): Promise<Buffer> {
  switch (codec) {
    case Codec.none:
      return data;
    case Codec.gzip:
      return gzipSync(data);
    case Codec.snappy:
      return asBuffer(snappy.compress(data));
    case Codec.lz4:
      return compressFrameSync(data);
    case Codec.zstd:
      return zstdCompress(data);
    default:
      throw new CodecError(`unknown compression codec ${codec}`);
  }
}

export function codecName(codec: number): string {
  return Object.entries(Codec).find(([, id]) => id === codec)?.[0] ?? `codec ${codec}`;
}

/** What a kafkajs client will decompress at most from one batch (a guard against bombs). */
const CLIENT_MAX_DECOMPRESSED = 256 * 1024 * 1024;

/** Registers snappy, lz4 and zstd with kafkajs (idempotent; gzip is built in). */
export function registerKafkaCodecs(): void {
  const codec = (id: number) => () => ({
    compress: (encoder: { buffer: Buffer }) => compress(id, encoder.buffer),
    decompress: async (buffer: Buffer) => decompress(id, buffer, CLIENT_MAX_DECOMPRESSED),
  });
  // kafkajs is CommonJS and these two are not among the names Node can import from it.
  const { CompressionCodecs, CompressionTypes } = kafkajs;
  const codecs = CompressionCodecs as Record<number, unknown>;
  codecs[CompressionTypes.Snappy] = codec(Codec.snappy);
  codecs[CompressionTypes.LZ4] = codec(Codec.lz4);
  codecs[CompressionTypes.ZSTD] = codec(Codec.zstd);
}

// Every module that creates Kafka clients imports this one (through client.ts); registration
// is global in kafkajs, so doing it on import is what makes it impossible to forget.
registerKafkaCodecs();
