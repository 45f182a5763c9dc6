/**
 * `npm start` checks the user's configuration the way every stage will, before it starts
 * anything: a bad key is named and the command exits 2, instead of the stage failing later.
 * What it cannot run with the configuration given (the inbound service, without a return-path
 * domain) it leaves out and says so, rather than failing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../helpers/broker.js';
import { freePort } from '../helpers/free-port.js';
import { startLauncher } from './launcher-process.js';

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

test('npm start through a relay without a return-path domain runs every stage but the inbound service, and says how to add it', { timeout: 300_000 }, async (t) => {
  // The inbound service receives mail for the return-path domain; through a real relay there is no local default for it.
  const l = await startLauncher({ POSTLINE_DISPATCHER_RELAY_HOST: '127.0.0.1', POSTLINE_DISPATCHER_RELAY_PORT: String(await freePort()) });
  t.after(() => l.destroy());
  assert.deepEqual(l.commands(), ['analytics', 'broker', 'stages renderer,dispatcher,scheduler,ingest,tracker,smtp-gateway,webhooks']);
  assert.match(l.output(), /Bounces\s+not read: set POSTLINE_FEEDBACK_RETURN_PATH_DOMAIN, whose MX points here, to run the inbound service on smtp:\/\/127\.0\.0\.1:\d+/);
  const res = await fetch(`http://127.0.0.1:${l.ports.api}/v1/emails`, {
    method: 'POST',
    headers: { authorization: `Bearer ${l.key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ from: 'demo@example.com', to: ['you@example.org'], subject: 'relay', text: 'x' }),
  });
  assert.equal(res.status, 202);
});
