/**
 * Loads, at import, the kafkajs modules it would otherwise `require` on the first message after a
 * start. kafkajs requires a request's encoder and decoder the first time that request is sent:
 * the first produce of a process loads Produce v7 (and the v6, v5, v3 it builds on) and the
 * record encoders, the first offset commit OffsetCommit v5 — fifteen modules, each resolved
 * through tsx's loader hooks on a checkout, all on the path of the first message through each
 * hop. The versions are the newest kafkajs 2.2.4 speaks, which the Postline broker and any Kafka
 * since 2.1 accept, so they are the ones it negotiates; a client that negotiates lower still
 * loads that version when it first needs it, as before.
 *
 * They are loaded the way kafkajs loads them — by building (not sending) a request through the
 * request's own `protocol({ version })` — because kafkajs keeps calling `require('./v7/request')`
 * for every request it sends, and Node answers a repeated `require` from its fast per-parent
 * cache only when that same parent module loaded it first. Loaded from here under their full
 * names, every later produce and commit resolved its two modules again: ~12 µs a request
 * against ~0.7 µs (measured, Node 20), ~1 % of the stages process's CPU under a batch.
 */
import { createRequire } from 'node:module';
import { crc32c } from '@node-rs/crc32';

const require = createRequire(import.meta.url);

/**
 * Two costs of kafkajs's produce encoding, cut here before any record batch module loads (they
 * are required by the produce requests built below). Every produce request — each message's
 * request record, dispatch record and events — went through both:
 *
 * - Each record batch's CRC-32C was computed in JavaScript a byte at a time. The record batch
 *   module takes `require('../crc32C')` once, at its top: that module's exports become the
 *   native CRC-32C of `@node-rs/crc32`, which the broker already verifies batches with.
 * - Its encoders grew their buffers with `Buffer.alloc`: zero-filled and never from Node's pool,
 *   at every doubling of every nested encoder (a record, its batch, the request). An encoder only
 *   ever exposes the bytes it wrote (`buffer` is `buf.slice(0, offset)`; every write method
 *   writes each byte it advances over), so growing with `Buffer.allocUnsafe` changes no byte sent.
 *
 * Measured by encoding the same Produce v7 request in a loop, kafkajs as shipped against these
 * two changes, in separate processes, three alternations (a loaded VM): 3 records of 5.6 kB
 * 230/183/204 → 113/118/139 µs, 20 records 1,016/1,027/834 → 495/503/694 µs; identical bytes.
 * The test checks the CRC against kafkajs's own and that no encoded byte comes from an unfilled buffer.
 */
const CRC_MODULE = require.resolve('kafkajs/src/protocol/recordBatch/crc32C');
/** Whether record batches use the native CRC: not when something loaded them first (a bench's raw producer), which then keeps kafkajs's own. */
export const nativeRecordCrc = !require.cache[require.resolve('kafkajs/src/protocol/recordBatch/v0')];
if (nativeRecordCrc) {
  require(CRC_MODULE);
  require.cache[CRC_MODULE]!.exports = (buffer: Buffer): number => crc32c(buffer);
}

interface KafkajsEncoder {
  buf: Buffer;
  offset: number;
}
const Encoder = require('kafkajs/src/protocol/encoder') as { prototype: KafkajsEncoder & { ensureAvailable(length: number): void }; nextPowerOfTwo(n: number): number };
Encoder.prototype.ensureAvailable = function ensureAvailable(this: KafkajsEncoder, length: number): void {
  if (this.offset + length <= this.buf.length) return;
  const grown = Buffer.allocUnsafe(Encoder.nextPowerOfTwo(this.offset + length));
  this.buf.copy(grown, 0, 0, this.offset);
  this.buf = grown;
};

interface RequestIndex {
  protocol(o: { version: number }): (args: Record<string, unknown>) => unknown;
}

/** Each request's index module, the version to load, and arguments to build (never encode) one with. */
const PRELOADED: Array<[string, number, Record<string, unknown>]> = [
  ['requests/produce', 7, { acks: -1, timeout: 30_000, topicData: [] }],
  ['requests/offsetCommit', 5, { groupId: '', groupGenerationId: 0, memberId: '', topics: [] }],
];

for (const [index, version, args] of PRELOADED) (require(`kafkajs/src/protocol/${index}`) as RequestIndex).protocol({ version })(args);
// The record encoders, which a record batch requires at its module's top (once).
for (const m of ['recordBatch/record/v0/index.js', 'recordBatch/header/v0/index.js']) require(`kafkajs/src/protocol/${m}`);
