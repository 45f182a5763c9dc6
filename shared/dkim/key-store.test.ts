/**
 * The live key table: a changed directory is picked up without a restart, through a plain
 * directory and through a Kubernetes Secret's `..data` symlink swap; problems never throw.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { DkimKeyStore } from './key-store.js';
import { waitFor } from '../../test/helpers/broker.js';

const ed25519 = (): string => generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;

function put(dir: string, rel: string, content: string): void {
  fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
  fs.writeFileSync(path.join(dir, rel), content);
}

test('key store: a new selector and a new domain are picked up from fs.watch, with no rescan', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dkim-store-'));
  put(dir, 'example.com/s1.pem', ed25519());
  const store = new DkimKeyStore({ dir, rescanMs: 0, debounceMs: 20 });
  try {
    await store.start();
    assert.equal(store.keyFor('example.com')?.selector, 's1');
    put(dir, 'example.com/s2.pem', ed25519());
    await waitFor(() => store.keyFor('example.com')?.selector === 's2', 10_000, 'new selector signs');
    put(dir, 'example.org/a.pem', ed25519());
    await waitFor(() => store.keyFor('mail.example.org')?.domain === 'example.org', 10_000, 'new domain');
    put(dir, 'example.com/s3.pem', 'garbage');
    await waitFor(() => store.issues.some((i) => i.includes('s3.pem')), 10_000, 'bad key reported');
    assert.equal(store.keyFor('example.com')?.selector, 's2', 'the bad file does not take over');
  } finally {
    store.close();
    fs.rmSync(dir, { recursive: true });
  }
});

test('key store: a mounted Secret (..data symlink swapped to a new version) is re-read', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dkim-secret-'));
  // What the kubelet writes: ..<timestamp>/ holds the files, ..data points at it, and each
  // top-level entry is a symlink through ..data.
  put(dir, '..v1/example.com/s1.pem', ed25519());
  fs.symlinkSync('..v1', path.join(dir, '..data'));
  fs.symlinkSync('..data/example.com', path.join(dir, 'example.com'));
  const store = new DkimKeyStore({ dir, rescanMs: 0, debounceMs: 20 });
  try {
    await store.start();
    assert.equal(store.keyFor('example.com')?.selector, 's1');
    put(dir, '..v2/example.com/s1.pem', ed25519());
    put(dir, '..v2/example.com/s2.pem', ed25519());
    fs.symlinkSync('..v2', path.join(dir, '..data_tmp'));
    fs.renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
    fs.rmSync(path.join(dir, '..v1'), { recursive: true });
    await waitFor(() => store.keyFor('example.com')?.selector === 's2', 10_000, 'the new version signs');
    assert.deepEqual(store.issues, []);
  } finally {
    store.close();
    fs.rmSync(dir, { recursive: true });
  }
});

test('key store: the periodic rescan catches a change no watch reported; a vanished directory keeps the keys', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dkim-rescan-'));
  put(dir, 'example.com/s1.pem', ed25519());
  const store = new DkimKeyStore({ dir, rescanMs: 50 });
  try {
    await store.start();
    // Watches off: only the rescan can see the next change.
    (store as unknown as { watchers: Map<string, fs.FSWatcher> }).watchers.forEach((w) => w.close());
    (store as unknown as { watchers: Map<string, fs.FSWatcher> }).watchers.clear();
    put(dir, 'example.com/s2.pem', ed25519());
    await waitFor(() => store.keyFor('example.com')?.selector === 's2', 10_000, 'rescan picks up s2');
    // Vanish at once (a rename, as a volume or Secret swap does): a recursive delete is seen half
    // done by a rescan that lands in it — a directory without key files, which is applied as such.
    const gone = `${dir}-gone`;
    fs.renameSync(dir, gone);
    fs.rmSync(gone, { recursive: true });
    await waitFor(() => store.issues.some((i) => /cannot be read.*keeping the keys/.test(i)), 10_000, 'vanished directory reported');
    assert.equal(store.keyFor('example.com')?.selector, 's2');
  } finally {
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
