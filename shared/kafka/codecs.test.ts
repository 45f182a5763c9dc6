import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import kafkajs from 'kafkajs';
import { Codec, CodecError, compress, decompress } from './codecs.js';
import './client.js';

test('importing the Kafka client factory registers snappy, lz4 and zstd with kafkajs', async () => {
  const { CompressionCodecs, CompressionTypes } = kafkajs;
  const data = Buffer.concat([randomBytes(1000), Buffer.alloc(5000, 'a')]);
  for (const type of [CompressionTypes.Snappy, CompressionTypes.LZ4, CompressionTypes.ZSTD]) {
    const factory = (CompressionCodecs as Record<number, () => { compress(e: { buffer: Buffer }): Promise<Buffer>; decompress(b: Buffer): Promise<Buffer> }>)[type];
    assert.equal(typeof factory, 'function', `codec ${type} registered`);
    const codec = factory();
    const packed = await codec.compress({ buffer: data });
    assert.ok(packed.length < data.length);
    assert.deepEqual(await codec.decompress(packed), data);
  }
});

test('xerial-framed snappy (the Java client) decodes like raw snappy', async () => {
  const a = Buffer.alloc(3000, 'x');
  const b = Buffer.from('tail of the second block');
  const block = async (d: Buffer): Promise<Buffer> => {
    const c = await compress(Codec.snappy, d);
    const size = Buffer.alloc(4);
    size.writeUInt32BE(c.length);
    return Buffer.concat([size, c]);
  };
  const header = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0, 0, 0, 0, 1, 0, 0, 0, 1]);
  const framed = Buffer.concat([header, await block(a), await block(b)]);
  assert.deepEqual(decompress(Codec.snappy, framed, 1 << 20), Buffer.concat([a, b]));
});

test('output is bounded: a small batch that inflates past the limit is a CodecError, not an allocation', async () => {
  const big = Buffer.alloc(4 << 20);
  for (const codec of [Codec.gzip, Codec.snappy, Codec.zstd]) {
    const packed = await compress(codec, big);
    assert.throws(() => decompress(codec, packed, 1 << 20), CodecError, `codec ${codec}`);
    assert.equal(decompress(codec, packed, 8 << 20).length, big.length);
  }
});

test('garbage is a CodecError for every codec', () => {
  for (const codec of [Codec.gzip, Codec.snappy, Codec.lz4, Codec.zstd]) {
    assert.throws(() => decompress(codec, Buffer.from('not compressed at all'), 1 << 20), CodecError, `codec ${codec}`);
  }
});
