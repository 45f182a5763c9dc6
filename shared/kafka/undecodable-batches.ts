/**
 * Record batches kafkajs cannot decode (a codec it does not have, corrupt compressed data)
 * must not stop a stage. kafkajs decodes a fetched batch before any handler sees it, and a
 * batch whose records do not decompress fails the whole fetch, again on every retry: the
 * partition waits forever. So every kafkajs codec (ids 1-7, including those registered later)
 * is wrapped: when decompressing fails, the batch decodes instead to placeholder records at
 * the same offsets, the last one (at the batch's last offset) carrying the raw compressed
 * bytes and the reason. The stage consumer dead-letters that one and skips the others, so the
 * group commits past the batch and the partition moves on (`undecodableOf`).
 *
 * kafkajs passes a codec only the compressed bytes: the record count and last offset delta are
 * read from the batch header just before them (kafkajs slices, never copies, the fetch buffer).
 * A header that cannot be read that way leaves the original error in place.
 */
import { randomUUID } from 'node:crypto';
import kafkajs, { type KafkaMessage } from 'kafkajs';

/** The header that marks a placeholder record; its value starts with a per-process token no producer can forge. */
export const UNDECODABLE_HEADER = 'postline-undecodable';
const TOKEN = randomUUID();
/** A batch claiming more records than this is left to fail as before (a header this corrupt is not worth placeholders). */
const MAX_PLACEHOLDERS = 100_000;

interface KafkajsCodec {
  compress(encoder: { buffer: Buffer }): Promise<Buffer>;
  decompress(buffer: Buffer): Promise<Buffer>;
}
type CodecFactory = () => KafkajsCodec;

let installed = false;

/** Installs the guard on kafkajs's codec table (idempotent, process-wide like the table). */
export function guardUndecodableBatches(): void {
  if (installed) return;
  installed = true;
  const codecs = kafkajs.CompressionCodecs as unknown as Record<number, CodecFactory | undefined>;
  for (let id = 1; id <= 7; id++) {
    let real = codecs[id];
    Object.defineProperty(codecs, id, {
      configurable: true,
      enumerable: true,
      // A codec registered later (snappy, lz4, zstd) replaces the real one and stays guarded.
      set: (f: CodecFactory | undefined) => (real = f),
      get: (): CodecFactory => () => guarded(id, real),
    });
  }
}

function guarded(id: number, real: CodecFactory | undefined): KafkajsCodec {
  return {
    compress: (encoder) => {
      if (!real) throw new Error(`compression codec ${id} does not exist`);
      return real().compress(encoder);
    },
    decompress: async (buffer) => {
      try {
        if (!real) throw new Error(`compression codec ${id} does not exist`);
        return await real().decompress(buffer);
      } catch (err) {
        const placeholders = placeholdersFor(buffer, `compression codec ${id}: ${(err as Error).message}`);
        if (!placeholders) throw err;
        return placeholders;
      }
    },
  };
}

/** The batch header fields right before the compressed records (v2 batch layout), or null. */
function headerBefore(buffer: Buffer): { count: number; lastOffsetDelta: number } | null {
  const at = buffer.byteOffset;
  // attributes(2) lastOffsetDelta(4) firstTimestamp(8) maxTimestamp(8) producerId(8) producerEpoch(2) firstSequence(4) count(4)
  if (at < 40) return null;
  const view = Buffer.from(buffer.buffer, at - 40, 40);
  const lastOffsetDelta = view.readInt32BE(2);
  const count = view.readInt32BE(36);
  if (count < 1 || count > MAX_PLACEHOLDERS || lastOffsetDelta < count - 1) return null;
  return { count, lastOffsetDelta };
}

/** Zig-zag varint, as Kafka encodes record fields. Safe for |value| < 2^52. */
export function zigzagVarint(value: number): Buffer {
  let v = value >= 0 ? value * 2 : -value * 2 - 1;
  const out: number[] = [];
  while (v >= 128) {
    out.push((v % 128) | 128);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}

const bytes = (b: Buffer | null): Buffer[] => (b === null ? [zigzagVarint(-1)] : [zigzagVarint(b.length), b]);

function record(offsetDelta: number, value: Buffer | null, marker: string): Buffer {
  const body = Buffer.concat([
    Buffer.from([0]),
    zigzagVarint(0),
    zigzagVarint(offsetDelta),
    ...bytes(null),
    ...bytes(value),
    zigzagVarint(1),
    ...bytes(Buffer.from(UNDECODABLE_HEADER)),
    ...bytes(Buffer.from(marker)),
  ]);
  return Buffer.concat([zigzagVarint(body.length), body]);
}

function placeholdersFor(compressed: Buffer, reason: string): Buffer | null {
  const header = headerBefore(compressed);
  if (!header) return null;
  const parts: Buffer[] = [];
  for (let i = 0; i < header.count - 1; i++) parts.push(record(i, null, `${TOKEN}:skip`));
  parts.push(record(header.lastOffsetDelta, Buffer.from(compressed), `${TOKEN}:dead:${reason}`));
  return Buffer.concat(parts);
}

/**
 * What a fetched record is: null for a real record; `skip` for a placeholder of an undecodable
 * batch; `dead` (with why) for the one that carries the batch's raw bytes.
 */
export function undecodableOf(message: KafkaMessage): { kind: 'skip' } | { kind: 'dead'; reason: string } | null {
  const h = message.headers?.[UNDECODABLE_HEADER];
  const marker = Buffer.isBuffer(h) ? h.toString('utf8') : typeof h === 'string' ? h : undefined;
  if (!marker?.startsWith(`${TOKEN}:`)) return null;
  const rest = marker.slice(TOKEN.length + 1);
  if (rest === 'skip') return { kind: 'skip' };
  return { kind: 'dead', reason: `undecodable record batch (${rest.slice('dead:'.length)}); the value holds its raw compressed records` };
}
