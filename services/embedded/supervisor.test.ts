import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { STAGE_NODE_FLAGS } from '../../shared/node-flags.js';
import { Supervisor } from './supervisor.js';

/** A stand-in for `postline <stage>`: reports how it was started, exits 0 on SIGTERM. */
const PROBE = `
process.on('SIGTERM', () => { console.log(JSON.stringify({ msg: 'stopping' })); process.exit(0); });
console.log(JSON.stringify({ msg: 'ready', execArgv: process.execArgv, args: process.argv.slice(2), supervised: process.env.POSTLINE_SUPERVISED }));
setInterval(() => undefined, 1000);
`;

test('Supervisor: a stage runs with the production node flags, its arguments and the supervised marker; stop sends SIGTERM', { timeout: 30_000 }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'supervisor-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const entry = path.join(dir, 'probe.mjs');
  fs.writeFileSync(entry, PROBE);
  const supervisor = new Supervisor(entry);
  // The child's last line may be read after its exit event: wait for the line itself.
  const saidStopping = new Promise<void>((resolve) =>
    supervisor.on('line', (_name: string, line: Record<string, unknown> | string) => typeof line === 'object' && line.msg === 'stopping' && resolve()),
  );
  const started = await supervisor.start({ name: 'probe', args: ['renderer'], env: process.env, ready: (l) => (l.msg === 'ready' ? JSON.stringify(l) : undefined) });
  const ready = JSON.parse(started) as { execArgv: string[]; args: string[]; supervised: string };
  for (const flag of STAGE_NODE_FLAGS) assert.ok(ready.execArgv.includes(flag), `started with ${flag} (had ${ready.execArgv.join(' ')})`);
  assert.deepEqual(ready.args, ['renderer']);
  assert.equal(ready.supervised, '1');
  await supervisor.stop(['probe'], 5000);
  await saidStopping; // the child got SIGTERM and stopped itself (the test times out otherwise)
});
