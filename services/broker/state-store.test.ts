import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { StateStore } from './state-store.js';
import { tempDir } from '../../test/helpers/broker.js';

const root = tempDir('postline-state-');
after(() => fs.rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = (): string => path.join(root, `s${n++}`);
const journal = (dir: string): string => path.join(dir, 'state.journal');

describe('StateStore', () => {
  test('sets, deletes and replays after reopening', async () => {
    const dir = freshDir();
    const s = new StateStore(dir);
    s.set([['a', 1], ['b', { x: 'y' }]]);
    s.set([['a', null], ['c', 3]]);
    await s.flush();
    s.close();
    const r = new StateStore(dir);
    assert.equal(r.get('a'), undefined);
    assert.deepEqual(r.get('b'), { x: 'y' });
    assert.deepEqual([...r.entries('c')], [['c', 3]]);
    r.close();
  });

  test('tells its owner about every write and reports unsynced data', async () => {
    let writes = 0;
    const s = new StateStore(freshDir(), () => writes++);
    assert.equal(s.needsFlush, false);
    s.set([['k', 1]]);
    assert.equal(writes, 1);
    assert.equal(s.needsFlush, true);
    await s.flush();
    assert.equal(s.needsFlush, false);
    s.close();
  });

  const tornTails: Array<[string, (file: string) => void]> = [
    ['a half-written last entry', (f) => fs.truncateSync(f, fs.statSync(f).size - 5)],
    ['a last entry with a bad CRC', (f) => { const b = fs.readFileSync(f); b[b.length - 2] ^= 0xff; fs.writeFileSync(f, b); }],
    ['garbage after the last entry', (f) => fs.appendFileSync(f, Buffer.from([0, 0, 0, 99, 1, 2, 3]))],
    ['a length prefix larger than the file', (f) => fs.appendFileSync(f, Buffer.from([0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]))],
  ];
  for (const [name, tear] of tornTails) {
    test(`${name} is cut off on open; earlier entries survive and writing continues`, async () => {
      const dir = freshDir();
      const s = new StateStore(dir);
      s.set([['first', 1]]);
      s.set([['second', 2]]);
      await s.flush();
      s.close();
      const whole = fs.statSync(journal(dir)).size;
      tear(journal(dir));
      const r = new StateStore(dir);
      assert.equal(r.get('first'), 1);
      if (name.startsWith('garbage') || name.startsWith('a length')) {
        assert.equal(r.get('second'), 2);
        assert.equal(fs.statSync(journal(dir)).size, whole);
      }
      r.set([['third', 3]]);
      await r.flush();
      r.close();
      const again = new StateStore(dir);
      assert.equal(again.get('third'), 3);
      assert.equal(again.get('first'), 1);
      again.close();
    });
  }

  test('compaction rewrites the journal to one entry per live key and keeps every value', async () => {
    const dir = freshDir();
    const s = new StateStore(dir, () => undefined, { compactBytes: 4096 });
    for (let i = 0; i < 500; i++) s.set([[`k${i % 10}`, { i }], [`gone${i}`, null]]);
    await s.flush();
    assert.ok(fs.statSync(journal(dir)).size < 4096, 'journal was compacted');
    s.close();
    const r = new StateStore(dir);
    for (let k = 0; k < 10; k++) assert.deepEqual(r.get(`k${k}`), { i: 490 + k });
    assert.equal([...r.entries('gone')].length, 0);
    r.close();
  });

  test('a flush in flight while compaction triggers neither fails nor loses writes', async () => {
    const dir = freshDir();
    const s = new StateStore(dir, () => undefined, { compactBytes: 2048 });
    const flushes: Array<Promise<void>> = [];
    for (let i = 0; i < 300; i++) {
      s.set([[`k${i % 7}`, i]]);
      flushes.push(s.flush());
    }
    await Promise.all(flushes);
    await s.flush();
    s.close();
    const r = new StateStore(dir);
    for (let k = 0; k < 7; k++) assert.equal(r.get(`k${k}`), Math.max(...[...Array(300).keys()].filter((i) => i % 7 === k)));
    r.close();
  });

  test('a leftover compaction temp file (crash mid-compaction) is ignored', () => {
    const dir = freshDir();
    const s = new StateStore(dir);
    s.set([['a', 1]]);
    s.close();
    fs.writeFileSync(`${journal(dir)}.tmp`, 'partial');
    const r = new StateStore(dir);
    assert.equal(r.get('a'), 1);
    assert.equal(fs.existsSync(`${journal(dir)}.tmp`), false);
    r.close();
  });
});
