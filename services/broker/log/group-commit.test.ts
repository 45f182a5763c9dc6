import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GroupCommit, type Flushable } from './group-commit.js';

/** A file whose every fsync runs until the test finishes it, so "still running" is a fact. */
class HeldFile implements Flushable {
  needsFlush = false;
  syncs: Array<() => void> = [];
  write(): void {
    this.needsFlush = true;
  }
  flush(): Promise<void> {
    this.needsFlush = false;
    return new Promise((resolve) => this.syncs.push(resolve));
  }
}

/** Lets the end-of-phase (setImmediate) start of fsyncs and promise callbacks run. */
const settle = (): Promise<void> => new Promise((r) => setImmediate(() => setImmediate(r)));

test('a write to one file is fsynced while another file\'s fsync is still running, and its ack does not wait for it', async () => {
  const commit = new GroupCommit();
  const journal = new HeldFile();
  const partition = new HeldFile();
  journal.write();
  commit.markDirty(journal);
  await settle();
  assert.equal(journal.syncs.length, 1, 'the journal\'s fsync is running');

  // A produce arrives while the journal's fsync runs (an offset commit, say).
  partition.write();
  commit.markDirty(partition);
  await settle();
  assert.equal(partition.syncs.length, 1, 'the partition waited for the journal\'s fsync to finish before its own started');
  let acked = false;
  const ack = commit.durableFor([partition]).then(() => void (acked = true));
  partition.syncs[0]();
  await ack;
  assert.equal(acked, true);
  assert.equal(journal.syncs.length, 1, 'the journal is still syncing: the ack did not wait for it');
  journal.syncs[0]();
  await commit.flushAll();
});

test('writes to a file during its fsync share the next one; a waiter is released only by an fsync that covers its write', async () => {
  const commit = new GroupCommit();
  const file = new HeldFile();
  file.write();
  commit.markDirty(file);
  const first = commit.durableFor([file]);
  await settle();
  assert.equal(file.syncs.length, 1);

  // Two writes while the first fsync runs: their acks need a second fsync, and share it.
  let laterDone = 0;
  const later = [1, 2].map(() => {
    file.write();
    commit.markDirty(file);
    return commit.durableFor([file]).then(() => void laterDone++);
  });
  file.syncs[0]();
  await first;
  await settle();
  assert.equal(laterDone, 0, 'released by an fsync that started before their writes');
  assert.equal(file.syncs.length, 2, 'one more fsync for both writes');
  file.syncs[1]();
  await Promise.all(later);
  assert.equal(laterDone, 2);
  await settle();
  assert.equal(file.syncs.length, 2, 'nothing runs once nothing is dirty');
});

test('durable() waits for every file written before it, and resolves at once when nothing is dirty', async () => {
  const commit = new GroupCommit();
  await commit.durable();
  const a = new HeldFile();
  const b = new HeldFile();
  a.write();
  b.write();
  commit.markDirty(a);
  commit.markDirty(b);
  let done = false;
  const all = commit.durable().then(() => void (done = true));
  await settle();
  a.syncs[0]();
  await settle();
  assert.equal(done, false, 'b is not on disk yet');
  b.syncs[0]();
  await all;
  assert.equal(done, true);
});

test('a failed fsync rejects the acks waiting for it', async () => {
  const commit = new GroupCommit();
  const file: Flushable = { needsFlush: true, flush: () => Promise.reject(new Error('EIO')) };
  commit.markDirty(file);
  await assert.rejects(commit.durableFor([file]), /EIO/);
});
