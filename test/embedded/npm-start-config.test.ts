/**
 * `npm start` checks the user's configuration the way every stage will, before it starts
 * anything: a bad key is named and the command exits 2, instead of the stage failing later.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../helpers/broker.js';

const ENTRY = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'services', 'postline.mjs');

test('npm start with an invalid POSTLINE_INGEST_API_KEYS names it and exits 2 before starting anything', { timeout: 60_000 }, async (t) => {
  const dataDir = tempDir('postline-start-');
  t.after(() => fs.rmSync(dataDir, { recursive: true, force: true }));
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('POSTLINE_')));
  const proc = spawn(process.execPath, [ENTRY, 'start', '--data-dir', dataDir], { env: { ...env, POSTLINE_INGEST_API_KEYS: 'not-json' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proc.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const code = await new Promise<number | null>((r) => proc.once('exit', r));
  assert.equal(code, 2);
  assert.match(output, /postline start: invalid configuration:\n\s+- POSTLINE_INGEST_API_KEYS \(ingest\.apiKeys\): expected JSON/);
  assert.ok(!fs.existsSync(path.join(dataDir, 'broker')), 'the broker was never started');
});
