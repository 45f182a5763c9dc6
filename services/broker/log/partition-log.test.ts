import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { PartitionLog, AppendError } from './partition-log.js';
import { parseTopicConfig } from './topic-config.js';
import { readRecords, scanBatches, type BatchInfo } from './record-batch.js';
import { cleanPartition, needsCleaning } from './log-cleaner.js';
import { encodeBatch, type TestRecord } from '../../../test/broker/support/batch-encoder.js';
import { tempDir } from '../../../test/helpers/broker.js';

const root = tempDir('postline-plog-');
after(() => fs.rmSync(root, { recursive: true, force: true }));
let dirCount = 0;

function open(dir: string, configs: Record<string, string> = {}, unclean = false, durability: 'group' | 'none' = 'group'): PartitionLog {
  return PartitionLog.open('t', 0, dir, parseTopicConfig(configs), durability, unclean);
}

function freshDir(): string {
  return path.join(root, `p${dirCount++}`);
}

/** Every record readable from `from`, as [offset, key, value]. */
function readAll(log: PartitionLog, from = log.logStartOffset): Array<[number, string | null, string | null]> {
  const out: Array<[number, string | null, string | null]> = [];
  let offset = from;
  for (;;) {
    const r = log.read(offset, 1 << 20);
    assert.equal(r.error, undefined);
    if (r.records.length === 0) return out;
    for (const chunk of r.records) {
      scanBatches(chunk, (info: BatchInfo) => {
        for (const rec of readRecords(chunk, info)) {
          if (rec.offset >= offset) out.push([rec.offset, rec.key?.toString() ?? null, rec.value?.toString() ?? null]);
        }
        offset = info.baseOffset + info.lastOffsetDelta + 1;
      });
    }
  }
}

const values = (log: PartitionLog): Array<string | null> => readAll(log).map(([, , v]) => v);

function appendValues(log: PartitionLog, vals: string[], opts: Partial<Parameters<typeof encodeBatch>[0]> = {}): number {
  return log.append(encodeBatch({ records: vals.map((v) => ({ key: v, value: v })), ...opts })).baseOffset;
}

function activeLogFile(dir: string): string {
  const logs = fs.readdirSync(dir).filter((n) => n.endsWith('.log')).sort();
  return path.join(dir, logs.at(-1) as string);
}

describe('high watermark = durable offset (durability group)', () => {
  test('appended data is invisible to readers until flushed', async () => {
    const log = open(freshDir());
    appendValues(log, ['a', 'b']);
    assert.equal(log.logEndOffset, 2);
    assert.equal(log.highWatermark, 0);
    assert.deepEqual(log.read(0, 1 << 20).records, [], 'nothing above the high watermark is served');
    assert.equal(log.offsetForTimestamp(0), null);
    let moved = 0;
    log.onHighWatermark(() => moved++);
    await log.flush();
    assert.equal(log.highWatermark, 2);
    assert.equal(moved, 1);
    assert.deepEqual(values(log), ['a', 'b']);
    log.close();
  });

  test('a flush covers only what was appended before it started', async () => {
    const log = open(freshDir());
    appendValues(log, ['a']);
    const f = log.flush();
    appendValues(log, ['b']);
    await f;
    assert.equal(log.highWatermark, 1);
    await log.flush();
    assert.equal(log.highWatermark, 2);
    log.close();
  });

  test('durability none exposes data at once', () => {
    const log = open(freshDir(), {}, false, 'none');
    appendValues(log, ['a']);
    assert.equal(log.highWatermark, 1);
    log.close();
  });

  test('flushing a closed (deleted) log is a no-op, not an error', async () => {
    const log = open(freshDir());
    appendValues(log, ['a']);
    log.close();
    await log.flush();
  });
});

describe('append', () => {
  test('assigns consecutive offsets across batches in one record set', async () => {
    const log = open(freshDir());
    const set = Buffer.concat([encodeBatch({ records: [{ value: 'a' }, { value: 'b' }] }), encodeBatch({ records: [{ value: 'c' }] })]);
    assert.equal(log.append(set).baseOffset, 0);
    assert.equal(appendValues(log, ['d']), 3);
    await log.flush();
    assert.deepEqual(values(log), ['a', 'b', 'c', 'd']);
    log.close();
  });

  const refused: Array<[string, Buffer, string]> = [
    ['an empty record set', Buffer.alloc(0), 'CORRUPT_MESSAGE'],
    ['a corrupt CRC', (() => { const b = encodeBatch({ records: [{ value: 'x' }] }); b[b.length - 1] ^= 1; return b; })(), 'CORRUPT_MESSAGE'],
    ['an inconsistent header', encodeBatch({ records: [{ value: 'x' }], lastOffsetDelta: 1000 }), 'INVALID_RECORD'],
    ['a batch over max.message.bytes', encodeBatch({ records: [{ value: 'x'.repeat(2000) }] }), 'MESSAGE_TOO_LARGE'],
  ];
  for (const [name, buf, error] of refused) {
    test(`refuses ${name} with ${error} and writes nothing`, () => {
      const log = open(freshDir(), { 'max.message.bytes': '1500' });
      assert.throws(() => log.append(buf), (e: unknown) => e instanceof AppendError && e.errorName === error);
      assert.equal(log.logEndOffset, 0);
      assert.equal(log.sizeBytes, 0);
      log.close();
    });
  }

  test('a retried idempotent batch returns its first offset and is stored once', async () => {
    const log = open(freshDir());
    const batch = (): Buffer => encodeBatch({ records: [{ value: 'a' }, { value: 'b' }], producerId: 3, producerEpoch: 0, baseSequence: 0 });
    assert.deepEqual(log.append(batch()), { baseOffset: 0, duplicate: false });
    assert.deepEqual(log.append(batch()), { baseOffset: 0, duplicate: true });
    await log.flush();
    assert.deepEqual(values(log), ['a', 'b']);
    log.close();
  });

  test('idempotence survives a restart and a segment roll (state rebuilt from snapshot + log)', async () => {
    const dir = freshDir();
    let log = open(dir, { 'segment.bytes': '1024' });
    const batches: Buffer[] = [];
    for (let seq = 0; seq < 30; seq++) {
      batches.push(encodeBatch({ records: [{ value: `v${seq}`.padEnd(60, '.') }], producerId: 9, producerEpoch: 0, baseSequence: seq }));
      log.append(Buffer.from(batches[seq]));
    }
    assert.ok(log.segments.length > 2);
    await log.flush();
    log.close();
    log = open(dir, { 'segment.bytes': '1024' });
    assert.deepEqual(log.append(Buffer.from(batches[29])), { baseOffset: 29, duplicate: true });
    assert.throws(() => log.append(encodeBatch({ records: [{ value: 'x' }], producerId: 9, producerEpoch: 0, baseSequence: 31 })), AppendError);
    // A torn newest snapshot falls back to an older one (or the log) rather than forgetting the producer.
    log.close();
    const snaps = fs.readdirSync(dir).filter((n) => n.endsWith('.snapshot')).sort();
    fs.writeFileSync(path.join(dir, snaps.at(-1) as string), '{"torn');
    log = open(dir, { 'segment.bytes': '1024' });
    assert.deepEqual(log.append(Buffer.from(batches[29])), { baseOffset: 29, duplicate: true });
    log.close();
  });
});

describe('recovery after a crash', () => {
  async function crashedLog(n: number): Promise<{ dir: string; sizes: number[] }> {
    const dir = freshDir();
    const log = open(dir, { 'index.interval.bytes': '0' });
    const sizes: number[] = [];
    for (let i = 0; i < n; i++) {
      appendValues(log, [`r${i}`]);
      sizes.push(log.active.size);
    }
    await log.flush();
    log.close(); // no clean-shutdown marker: the next open is unclean
    return { dir, sizes };
  }

  test('a torn tail (last batch cut mid-way) is cut off; earlier batches and their indexes survive', async () => {
    const { dir, sizes } = await crashedLog(5);
    fs.truncateSync(activeLogFile(dir), sizes[4] - 7);
    const log = open(dir, { 'index.interval.bytes': '0' }, true);
    assert.equal(log.logEndOffset, 4);
    assert.equal(fs.statSync(activeLogFile(dir)).size, sizes[3], 'file truncated to whole batches');
    assert.equal(fs.statSync(activeLogFile(dir).replace(/\.log$/, '.index')).size, 4 * 8, 'offset index rebuilt: one entry per batch');
    assert.deepEqual(values(log), ['r0', 'r1', 'r2', 'r3']);
    assert.deepEqual(readAll(log, 2).map(([o]) => o), [2, 3], 'index look-up by offset works');
    assert.equal(appendValues(log, ['after']), 4, 'the next append reuses the lost offset');
    await log.flush();
    assert.deepEqual(values(log), ['r0', 'r1', 'r2', 'r3', 'after']);
    log.close();
  });

  const tails: Array<[string, (size: number) => Buffer]> = [
    ['random garbage', () => Buffer.from('\u0001\u0002garbage that is not a batch at all, not even close'.repeat(3))],
    ['zeros (a file extended but never written)', () => Buffer.alloc(4096)],
    [
      'a well-framed batch with a bad CRC',
      () => {
        const b = encodeBatch({ records: [{ value: 'ghost' }], baseOffset: 5 });
        b[b.length - 1] ^= 0xff;
        return b;
      },
    ],
    ['a batch whose offsets go backwards', () => encodeBatch({ records: [{ value: 'ghost' }], baseOffset: 1 })],
  ];
  for (const [name, garbage] of tails) {
    test(`${name} after the last batch is cut off`, async () => {
      const { dir, sizes } = await crashedLog(5);
      fs.appendFileSync(activeLogFile(dir), garbage(sizes[4]));
      const log = open(dir, { 'index.interval.bytes': '0' }, true);
      assert.equal(log.logEndOffset, 5);
      assert.equal(fs.statSync(activeLogFile(dir)).size, sizes[4]);
      assert.deepEqual(values(log), ['r0', 'r1', 'r2', 'r3', 'r4']);
      log.close();
    });
  }

  test('a torn tail in the segment before the active one (crash right after a roll) is cut off too', async () => {
    const dir = freshDir();
    const cfg = { 'segment.bytes': '1024' };
    const log = open(dir, cfg);
    for (let i = 0; i < 20; i++) appendValues(log, [`v${i}`.padEnd(100, '.')]);
    await log.flush();
    const closed = log.segments.at(-2)!;
    const lastOfClosed = closed.nextOffset - 1;
    const closedFile = closed.files.log;
    const wholeSize = closed.size;
    log.close();
    fs.appendFileSync(closedFile, Buffer.from('torn-bytes-without-a-batch-header'));
    const reopened = open(dir, cfg, true);
    assert.equal(fs.statSync(closedFile).size, wholeSize, 'the torn bytes are gone from the file');
    assert.equal(reopened.segments.at(-2)!.size, wholeSize);
    const got = readAll(reopened);
    assert.equal(got.length, 20);
    assert.ok(got.some(([o]) => o === lastOfClosed));
    reopened.close();
  });
});

describe('segments and indexes', () => {
  async function multiSegment(): Promise<{ dir: string; ts: number[] }> {
    const dir = freshDir();
    const log = open(dir, { 'segment.bytes': '1024', 'index.interval.bytes': '200' });
    const ts: number[] = [];
    for (let i = 0; i < 40; i++) {
      ts.push(1_000_000 + i * 10);
      log.append(encodeBatch({ records: [{ key: `k${i}`, value: `v${i}`.padEnd(80, '.'), timestamp: ts[i] }] }));
    }
    await log.flush();
    log.close();
    return { dir, ts };
  }

  function checkEveryOffset(log: PartitionLog, ts: number[]): void {
    assert.equal(log.logEndOffset, 40);
    for (let o = 0; o < 40; o++) {
      const r = log.read(o, 1);
      const info = scanBatchesOf(r.records[0]);
      assert.ok(info.baseOffset <= o && o <= info.baseOffset + info.lastOffsetDelta, `read(${o}) starts at the batch holding it`);
      assert.deepEqual(log.offsetForTimestamp(ts[o]), { offset: o, timestamp: ts[o] });
      assert.deepEqual(log.offsetForTimestamp(ts[o] - 5), { offset: o, timestamp: ts[o] });
    }
    assert.equal(log.offsetForTimestamp(ts[39] + 1), null);
    for (let i = 0; i < log.segments.length; i++) {
      const seg = log.segments[i];
      const next = log.segments[i + 1];
      if (next) assert.equal(seg.nextOffset, next.baseOffset, `segment ${i} end offset`);
    }
    assert.equal(log.segments[0].maxTimestamp, ts[log.segments[1].baseOffset - 1], 'closed segment max timestamp (drives retention.ms)');
  }

  test('closed segments reopen from their index files with correct end offsets, positions and timestamps', async () => {
    const { dir, ts } = await multiSegment();
    const log = open(dir, { 'segment.bytes': '1024', 'index.interval.bytes': '200' });
    assert.ok(log.segments.length >= 4);
    checkEveryOffset(log, ts);
    log.close();
  });

  const damage: Array<[string, (idx: string, tix: string) => void]> = [
    ['missing index files', (idx, tix) => { fs.rmSync(idx); fs.rmSync(tix); }],
    ['a torn offset index', (idx) => fs.truncateSync(idx, fs.statSync(idx).size - 3)],
    ['an empty offset index', (idx) => fs.truncateSync(idx, 0)],
    ['an index pointing past the log', (idx) => { const b = Buffer.alloc(8); b.writeInt32BE(1, 0); b.writeInt32BE(1 << 20, 4); fs.appendFileSync(idx, b); }],
    ['an index entry that is not at a batch boundary', (idx) => { const b = Buffer.alloc(8); b.writeInt32BE(3, 0); b.writeInt32BE(17, 4); fs.appendFileSync(idx, b); }],
    ['a lost time index', (_idx, tix) => fs.truncateSync(tix, 0)],
  ];
  for (const [name, hurt] of damage) {
    test(`indexes are rebuilt from the log after ${name}`, async () => {
      const { dir, ts } = await multiSegment();
      const first = path.join(dir, '00000000000000000000');
      hurt(`${first}.index`, `${first}.timeindex`);
      const log = open(dir, { 'segment.bytes': '1024', 'index.interval.bytes': '200' });
      checkEveryOffset(log, ts);
      log.close();
    });
  }

  test('offsets by timestamp inside gzip batches and with out-of-order timestamps', async () => {
    const log = open(freshDir());
    const recs = (base: number, tss: number[]): TestRecord[] => tss.map((t, i) => ({ key: `k${base + i}`, value: `v${base + i}`, timestamp: t }));
    log.append(encodeBatch({ records: recs(0, [100, 110, 120]), compression: 'gzip' }));
    log.append(encodeBatch({ records: recs(3, [200, 150, 250]), compression: 'gzip' }));
    log.append(encodeBatch({ records: recs(6, [300, 310]) }));
    await log.flush();
    const table: Array<[number, [number, number] | null]> = [
      [0, [0, 100]],
      [100, [0, 100]],
      [105, [1, 110]],
      [120, [2, 120]],
      [121, [3, 200]],
      [150, [3, 200]],
      [201, [5, 250]],
      [251, [6, 300]],
      [305, [7, 310]],
      [311, null],
    ];
    for (const [ts, want] of table) {
      const got = log.offsetForTimestamp(ts);
      assert.deepEqual(got && [got.offset, got.timestamp], want, `timestamp ${ts}`);
    }
    log.close();
  });
});

describe('retention', () => {
  test('retention.bytes deletes whole old segments and moves the log start offset', async () => {
    const log = open(freshDir(), { 'segment.bytes': '1024', 'retention.bytes': '2048' });
    for (let i = 0; i < 40; i++) appendValues(log, [`v${i}`.padEnd(100, '.')]);
    await log.flush();
    const before = log.segments.length;
    const deleted = log.enforceRetention();
    assert.ok(deleted > 0);
    assert.equal(log.segments.length, before - deleted);
    assert.ok(log.sizeBytes - log.segments[0].size < 2048);
    assert.equal(log.logStartOffset, log.segments[0].baseOffset);
    assert.equal(log.read(0, 100).error, 'OFFSET_OUT_OF_RANGE');
    assert.equal(readAll(log)[0][0], log.logStartOffset);
    assert.equal(readAll(log).at(-1)![0], 39);
    log.close();
  });

  test('retention.ms deletes segments whose newest record is older; the active segment stays', async () => {
    const log = open(freshDir(), { 'segment.bytes': '1024', 'retention.ms': '60000' });
    const now = Date.now();
    for (let i = 0; i < 20; i++) log.append(encodeBatch({ records: [{ value: `old${i}`.padEnd(100, '.'), timestamp: now - 3_600_000 }] }));
    for (let i = 0; i < 3; i++) log.append(encodeBatch({ records: [{ value: `new${i}`.padEnd(100, '.'), timestamp: now }] }));
    await log.flush();
    log.enforceRetention(now);
    assert.ok(log.logStartOffset > 0);
    assert.ok(readAll(log).every(([, , v]) => v!.startsWith('new') || log.segments.length === 1));
    assert.ok(values(log).some((v) => v!.startsWith('new0')));
    log.close();
  });
});

describe('compaction', () => {
  const cfg = { 'cleanup.policy': 'compact', 'segment.bytes': '1024', 'delete.retention.ms': '1000' };

  test('keeps the latest value per key with its offset; tombstones go once expired; fetching a gap moves on', async () => {
    const dir = freshDir();
    const log = open(dir, cfg);
    const now = Date.now();
    const latest = new Map<string, [number, string | null]>();
    let offset = 0;
    for (let round = 0; round < 6; round++) {
      for (const k of ['a', 'b', 'c', 'd']) {
        const value = k === 'd' && round === 5 ? null : `${k}${round}`.padEnd(40, '.');
        log.append(encodeBatch({ records: [{ key: k, value, timestamp: now - 10_000 }] }));
        latest.set(k, [offset++, value]);
      }
    }
    log.roll(); // every version above is in a closed (compactable) segment
    log.append(encodeBatch({ records: [{ key: 'z', value: 'tail', timestamp: now }] }));
    latest.set('z', [offset++, 'tail']);
    await log.flush();
    assert.ok(needsCleaning(log, now));
    const before = readAll(log);

    // Tombstones within delete.retention.ms stay (readers must see the delete).
    const r1 = cleanPartition(log, now - 9_500);
    assert.ok(r1.recordsRemoved > 0);
    const kept = readAll(log);
    assert.deepEqual(
      kept.map(([o, k, v]) => [o, k, v]),
      [...latest].map(([k, [o, v]]) => [o, k, v]).sort((x, y) => (x[0] as number) - (y[0] as number)),
    );
    for (const [o, k, v] of kept) assert.deepEqual(before.find(([bo]) => bo === o), [o, k, v], 'kept records keep their offsets');

    // Later the tombstone expires and the key disappears.
    cleanPartition(log, now);
    assert.deepEqual(readAll(log).map(([, k]) => k), ['a', 'b', 'c', 'z']);

    // A consumer positioned in a compacted-away gap gets the next surviving record.
    const firstKept = readAll(log)[0][0];
    assert.ok(firstKept > 0);
    assert.equal(readAll(log, 1)[0][0], firstKept);
    log.close();

    // Compaction results survive a restart.
    const reopened = open(dir, cfg);
    assert.deepEqual(readAll(reopened).map(([, k]) => k), ['a', 'b', 'c', 'z']);
    assert.equal(reopened.logEndOffset, offset);
    reopened.close();
  });

  test('records above the high watermark are neither compacted nor used to drop older values', async () => {
    const log = open(freshDir(), cfg);
    for (let i = 0; i < 30; i++) log.append(encodeBatch({ records: [{ key: 'k', value: `v${i}`.padEnd(60, '.') }] }));
    await log.flush();
    log.roll();
    // Newer values appended but not yet durable: a crash could still take them back.
    log.append(encodeBatch({ records: [{ key: 'k', value: null }] }));
    for (let i = 0; i < 20; i++) log.append(encodeBatch({ records: [{ key: 'k', value: `w${i}`.padEnd(60, '.') }] }));
    cleanPartition(log, Date.now() + 3_600_000);
    const visible = readAll(log);
    assert.deepEqual(visible.map(([o]) => o), [29], 'the latest durable value is kept');
    await log.flush();
    assert.equal(readAll(log).at(-1)![2], 'w19'.padEnd(60, '.'));
    log.close();
  });
});

function scanBatchesOf(chunk: Buffer): BatchInfo {
  let first: BatchInfo | undefined;
  scanBatches(chunk, (i) => {
    first = i;
    return false;
  });
  assert.ok(first);
  return first;
}
