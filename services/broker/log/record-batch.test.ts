import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { crc32c } from '@node-rs/crc32';
import {
  CorruptBatchError,
  InvalidBatchError,
  batchCrcValid,
  encodeRecord,
  readBatchInfo,
  readRecords,
  readVarint,
  rebuildBatch,
  scanBatches,
  setBaseOffset,
  validateBatches,
  writeVarint,
} from './record-batch.js';
import { encodeBatch, encodeTestRecord, zigzagVarint } from '../../../test/broker/support/batch-encoder.js';
import { compress } from '../../../shared/kafka/codecs.js';

describe('zig-zag varints', () => {
  const table: Array<[number, number[]]> = [
    [0, [0x00]],
    [-1, [0x01]],
    [1, [0x02]],
    [-2, [0x03]],
    [63, [0x7e]],
    [-64, [0x7f]],
    [64, [0x80, 0x01]],
    [-65, [0x81, 0x01]],
    [8191, [0xfe, 0x7f]],
    [8192, [0x80, 0x80, 0x01]],
    [2 ** 31 - 1, [0xfe, 0xff, 0xff, 0xff, 0x0f]],
    [-(2 ** 31), [0xff, 0xff, 0xff, 0xff, 0x0f]],
  ];
  for (const [value, bytes] of table) {
    test(`${value} <-> ${Buffer.from(bytes).toString('hex')}`, () => {
      const out: number[] = [];
      writeVarint(value, out);
      assert.deepEqual(out, bytes);
      const at = { pos: 0 };
      assert.equal(readVarint(Buffer.from(bytes), at), value);
      assert.equal(at.pos, bytes.length);
    });
  }

  test('round-trips timestamp-sized values (varlong)', () => {
    for (const v of [1_700_000_000_000, -1_700_000_000_000, 2 ** 50 + 3]) {
      const out: number[] = [];
      writeVarint(v, out);
      assert.deepEqual(Buffer.from(out), zigzagVarint(v));
      assert.equal(readVarint(Buffer.from(out), { pos: 0 }), v);
    }
  });

  test('a truncated varint is a CorruptBatchError, not a RangeError', () => {
    assert.throws(() => readVarint(Buffer.from([0x80, 0x80]), { pos: 0 }), CorruptBatchError);
    assert.throws(() => readVarint(Buffer.alloc(12, 0xff), { pos: 0 }), CorruptBatchError);
  });
});

describe('validateBatches', () => {
  const good = (): Buffer => encodeBatch({ records: [{ key: 'k', value: 'v' }, { key: null, value: 'w' }], baseTimestamp: 1000 });

  test('accepts well-formed batches back to back and reports their headers', () => {
    const a = encodeBatch({ records: [{ value: 'a' }], baseTimestamp: 5, producerId: 7, producerEpoch: 1, baseSequence: 3 });
    const b = encodeBatch({ records: [{ value: 'b' }, { value: 'c', timestamp: 9 }], baseTimestamp: 6, compression: 'gzip' });
    const infos = validateBatches(Buffer.concat([a, b]));
    assert.equal(infos.length, 2);
    assert.deepEqual(
      { ...infos[0] },
      { position: 0, size: a.length, baseOffset: 0, lastOffsetDelta: 0, attributes: 0, baseTimestamp: 5, maxTimestamp: 5, producerId: 7, producerEpoch: 1, baseSequence: 3, recordCount: 1 },
    );
    assert.equal(infos[1].position, a.length);
    assert.equal(infos[1].attributes & 7, 1);
    assert.equal(infos[1].maxTimestamp, 9);
    assert.equal(infos[1].recordCount, 2);
  });

  const corruptions: Array<[string, (b: Buffer) => Buffer]> = [
    ['a flipped payload byte (CRC mismatch)', (b) => { b[b.length - 2] ^= 0xff; return b; }],
    ['a flipped attributes byte (covered by the CRC)', (b) => { b[22] ^= 0x01; return b; }],
    ['a wrong CRC field', (b) => { b.writeUInt32BE((b.readUInt32BE(17) + 1) >>> 0, 17); return b; }],
    ['magic 1', (b) => { b[16] = 1; return b; }],
    ['a length past the end', (b) => { b.writeInt32BE(b.length, 8); return b; }],
    ['a length shorter than a header', (b) => { b.writeInt32BE(10, 8); return b; }],
    ['a truncated header', (b) => b.subarray(0, 40)],
    ['a truncated body', (b) => b.subarray(0, b.length - 1)],
    ['trailing garbage', (b) => Buffer.concat([b, Buffer.from('garbage')])],
  ];
  for (const [name, corrupt] of corruptions) {
    test(`rejects ${name}`, () => {
      assert.throws(() => validateBatches(corrupt(good())), CorruptBatchError);
    });
  }

  const inconsistent: Array<[string, Partial<Parameters<typeof encodeBatch>[0]>]> = [
    ['a negative record count', { recordCount: -1 }],
    ['a last offset delta below the record count', { lastOffsetDelta: 0 }],
    ['a huge last offset delta (would corrupt offsets)', { lastOffsetDelta: 2 ** 31 - 1 }],
    ['a negative last offset delta', { lastOffsetDelta: -1 }],
    ['zero records', { recordCount: 0, lastOffsetDelta: 0 }],
  ];
  for (const [name, spec] of inconsistent) {
    test(`rejects ${name}`, () => {
      const b = encodeBatch({ records: [{ value: 'x' }, { value: 'y' }], ...spec });
      assert.throws(() => validateBatches(b), CorruptBatchError);
    });
  }

  /** A copy of `batch` with its records replaced by `body` (lengths and CRC made valid again). */
  function withBody(batch: Buffer, body: Buffer, attributes?: number): Buffer {
    const out = Buffer.concat([batch.subarray(0, 61), body]);
    out.writeInt32BE(out.length - 12, 8);
    if (attributes !== undefined) out.writeInt16BE(attributes, 21);
    out.writeUInt32BE(crc32c(out.subarray(21)), 17);
    return out;
  }
  const base = (): Buffer => encodeBatch({ records: [{ key: 'k', value: 'v' }], baseTimestamp: 1 });
  const recordsOf = (b: Buffer): Buffer => b.subarray(61);
  const malformed: Array<[string, () => Buffer]> = [
    ['gzip flagged records that are not gzip', () => withBody(base(), Buffer.from('definitely not gzip'), 1)],
    ['bytes after the last record', () => withBody(base(), Buffer.concat([recordsOf(base()), Buffer.from([1, 2, 3])]))],
    ['a record whose offset delta is not its index', () => withBody(base(), encodeTestRecord({ value: 'a' }, 4, 1))],
    ['a record length past the batch', () => withBody(base(), Buffer.concat([zigzagVarint(200), recordsOf(base()).subarray(1)]))],
    ['records cut short', () => withBody(base(), recordsOf(base()).subarray(0, 3))],
    ['an unknown compression codec (7)', () => withBody(base(), recordsOf(base()), 7)],
    ['gzip records with trailing bytes inside', () => withBody(base(), gzipSync(Buffer.concat([recordsOf(base()), Buffer.from([9])])), 1)],
  ];
  for (const [name, make] of malformed) {
    test(`rejects a CRC-valid batch with ${name} as INVALID_RECORD`, () => {
      assert.throws(() => validateBatches(make()), (e: unknown) => e instanceof InvalidBatchError && e.code === 'INVALID_RECORD');
    });
  }

  for (const [name, codec] of [['snappy', 2], ['lz4', 3], ['zstd', 4]] as const) {
    test(`${name} batches are decoded: good records are read back, undecodable or malformed ones refused`, async () => {
      const two = encodeBatch({ records: [{ key: 'k', value: 'v' }, { key: 'k2', value: 'v2' }], baseTimestamp: 1 });
      const good = withBody(two, await compress(codec, recordsOf(two)), codec);
      const [info] = validateBatches(good);
      assert.deepEqual(readRecords(good, info).map((r) => [r.key?.toString(), r.value?.toString()]), [['k', 'v'], ['k2', 'v2']]);
      const notCompressed = (): Buffer => withBody(base(), Buffer.from('opaque bytes, not compressed'), codec);
      const trailing = async (): Promise<Buffer> => withBody(base(), await compress(codec, Buffer.concat([recordsOf(base()), Buffer.from([9])])), codec);
      for (const bad of [notCompressed(), await trailing()]) {
        assert.throws(() => validateBatches(bad), (e: unknown) => e instanceof InvalidBatchError && e.code === 'INVALID_RECORD');
      }
    });
  }

  test('batchCrcValid agrees with validateBatches', () => {
    const b = good();
    assert.equal(batchCrcValid(b, 0, b.length), true);
    b[b.length - 1] ^= 1;
    assert.equal(batchCrcValid(b, 0, b.length), false);
  });

  test('setBaseOffset changes the offset without invalidating the CRC', () => {
    const b = good();
    setBaseOffset(b, 0, 123456789);
    assert.equal(readBatchInfo(b, 0).baseOffset, 123456789);
    assert.equal(validateBatches(b).length, 1);
  });
});

describe('scanBatches', () => {
  test('stops at an incomplete tail and returns where the whole batches end', () => {
    const a = encodeBatch({ records: [{ value: 'a' }] });
    const b = encodeBatch({ records: [{ value: 'b' }] });
    const seen: number[] = [];
    const end = scanBatches(Buffer.concat([a, b.subarray(0, b.length - 3)]), (i) => void seen.push(i.position));
    assert.deepEqual(seen, [0]);
    assert.equal(end, a.length);
  });
});

describe('readRecords', () => {
  const records = [
    { key: 'user-1', value: 'hello', timestamp: 1_000 },
    { key: null, value: 'no key', timestamp: 1_005 },
    { key: 'tomb', value: null, timestamp: 999 },
    { key: '', value: '', timestamp: 1_000, headers: [['h', 'v']] as Array<[string, string]> },
    { key: 'big', value: Buffer.alloc(10_000, 7), timestamp: 2_000 },
  ];
  for (const compression of ['none', 'gzip'] as const) {
    test(`decodes keys, values, nulls, offsets and timestamps (${compression})`, () => {
      const buf = Buffer.concat([Buffer.alloc(13, 0xee), encodeBatch({ records, baseTimestamp: 1_000, baseOffset: 40, compression })]);
      const info = validateBatches(buf.subarray(13))[0];
      info.baseOffset = 40;
      const got = readRecords(buf, info, 13);
      assert.deepEqual(
        got.map((r) => ({ offset: r.offset, ts: r.timestamp, key: r.key?.toString() ?? null, value: r.value === null ? null : r.value.length > 100 ? r.value.length : r.value.toString() })),
        [
          { offset: 40, ts: 1_000, key: 'user-1', value: 'hello' },
          { offset: 41, ts: 1_005, key: null, value: 'no key' },
          { offset: 42, ts: 999, key: 'tomb', value: null },
          { offset: 43, ts: 1_000, key: '', value: '' },
          { offset: 44, ts: 2_000, key: 'big', value: 10_000 },
        ],
      );
    });
  }

  test('a record count larger than the records present is a CorruptBatchError', () => {
    const b = encodeBatch({ records: [{ value: 'a' }], recordCount: 3, lastOffsetDelta: 2 });
    assert.throws(() => readRecords(b, readBatchInfo(b, 0)), CorruptBatchError);
  });

  test('a key length running past its record is a CorruptBatchError', () => {
    const rec = Buffer.concat([zigzagVarint(4), Buffer.from([0]), zigzagVarint(0), zigzagVarint(0), zigzagVarint(50)]);
    const b = encodeBatch({ records: [{ value: 'a' }] });
    const header = b.subarray(0, 61);
    const broken = Buffer.concat([header, rec]);
    broken.writeInt32BE(broken.length - 12, 8);
    assert.throws(() => readRecords(broken, readBatchInfo(broken, 0)), CorruptBatchError);
  });
});

describe('rebuildBatch', () => {
  for (const compression of ['none', 'gzip'] as const) {
    test(`keeps chosen records with their offsets, timestamps, headers and producer fields (${compression})`, () => {
      const src = encodeBatch({
        records: [
          { key: 'a', value: '1', timestamp: 100 },
          { key: 'b', value: '2', timestamp: 150, headers: [['trace', 'x']] },
          { key: 'a', value: '3', timestamp: 120 },
        ],
        baseTimestamp: 100,
        baseOffset: 0,
        producerId: 9,
        producerEpoch: 2,
        baseSequence: 30,
        compression,
      });
      setBaseOffset(src, 0, 500);
      const info = validateBatches(src)[0];
      const all = readRecords(src, info);
      const rebuilt = rebuildBatch(info, [all[1], all[2]]);
      // Valid CRC and framing; not a produce-able batch any more (offsets 500 and 503 are gone).
      assert.equal(batchCrcValid(rebuilt, 0, rebuilt.length), true);
      const ri = readBatchInfo(rebuilt, 0);
      assert.equal(ri.size, rebuilt.length);
      assert.equal(ri.attributes & 7, 0, 'rebuilt batches are uncompressed');
      assert.deepEqual(
        [ri.baseOffset, ri.lastOffsetDelta, ri.baseTimestamp, ri.maxTimestamp, ri.producerId, ri.producerEpoch, ri.baseSequence, ri.recordCount],
        [500, 2, 100, 150, 9, 2, 30, 2],
      );
      const kept = readRecords(rebuilt, ri);
      assert.deepEqual(kept.map((r) => [r.offset, r.timestamp, r.key?.toString(), r.value?.toString()]), [
        [501, 150, 'b', '2'],
        [502, 120, 'a', '3'],
      ]);
      assert.deepEqual(kept[0].raw, all[1].raw, 'records are copied byte for byte (headers kept)');
    });
  }

  test('encodeRecord produces what readRecords reads', () => {
    const raw = encodeRecord(3, -7, Buffer.from('k'), null);
    const header = encodeBatch({ records: [{ value: 'x' }], baseTimestamp: 50 });
    const info = readBatchInfo(header, 0);
    const rebuilt = rebuildBatch({ ...info, lastOffsetDelta: 3 }, [{ raw } as never]);
    const [r] = readRecords(rebuilt, readBatchInfo(rebuilt, 0));
    assert.deepEqual([r.offsetDelta, r.timestamp, r.key?.toString(), r.value], [3, 43, 'k', null]);
  });
});
