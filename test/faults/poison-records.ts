/**
 * Poison inputs for the poison suite and the soak bench: records a stage cannot process, made
 * the way they reach a real deployment.
 * - An undecodable batch: a gzip batch is produced as a foreign client would (raw Produce, the
 *   broker checks it and stores it), then its compressed bytes are overwritten in the broker's
 *   segment file, as disk corruption or a codec no client has would leave it. (The broker
 *   refuses corrupt compressed data at the door, so this is the only way to get it there.)
 */
import fs from 'node:fs';
import path from 'node:path';
import { encodeBatch, type TestRecord } from '../broker/support/batch-encoder.js';
import { API, WireClient, parseProduceV3, produceBody } from '../broker/support/wire-client.js';

/** Bytes before a v2 batch's records: base offset, length, leader epoch, magic, crc (21) + the rest of the header (40). */
const BATCH_HEADER_BYTES = 61;

/** Produces `records` as one gzip batch with a raw Produce v3 (acks=-1); resolves with its base offset. */
export async function produceGzipBatch(bootstrap: string, topic: string, partition: number, records: TestRecord[]): Promise<{ baseOffset: number; compressed: Buffer }> {
  const batch = encodeBatch({ records, compression: 'gzip' });
  const client = await WireClient.connect(bootstrap);
  try {
    const [result] = parseProduceV3(await client.request(API.Produce, 3, produceBody(topic, partition, batch)));
    if (result.errorCode !== 0) throw new Error(`raw produce to ${topic}/${partition} failed with error ${result.errorCode}`);
    return { baseOffset: result.baseOffset, compressed: batch.subarray(BATCH_HEADER_BYTES) };
  } finally {
    client.close();
  }
}

/** Overwrites `compressed` (a stored batch's records) with bytes no codec decodes, in the partition's segment files. */
export function corruptStoredBatch(dataDir: string, topic: string, partition: number, compressed: Buffer): void {
  const dir = path.join(dataDir, 'topics', topic, String(partition));
  for (const name of fs.readdirSync(dir).filter((n) => n.endsWith('.log'))) {
    const file = path.join(dir, name);
    const at = fs.readFileSync(file).indexOf(compressed);
    if (at < 0) continue;
    const fd = fs.openSync(file, 'r+');
    try {
      fs.writeSync(fd, Buffer.alloc(compressed.length, 0xab), 0, compressed.length, at);
    } finally {
      fs.closeSync(fd);
    }
    return;
  }
  throw new Error(`the batch is not in ${dir}`);
}
