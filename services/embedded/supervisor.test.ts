import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { STAGE_NODE_FLAGS } from '../../shared/node-flags.js';
import { waitFor } from '../../test/helpers/broker.js';
import { Supervisor, SupervisedStartError } from './supervisor.js';
import type { RestartPolicy } from './restart-policy.js';

/**
 * A stand-in for `postline <stage>`. Says ready (reporting how it was started) once the file
 * named by PROBE_HOLD is gone; exits with PROBE_EXIT at start when set; exits 0 on SIGTERM;
 * on SIGUSR2 shuts down on its own, as a stage does when its consumer died or the launcher's
 * IPC channel closed.
 */
const PROBE = `
const fs = require('node:fs');
const say = (o) => console.log(JSON.stringify(o));
process.on('SIGTERM', () => { say({ msg: 'stopping' }); process.exit(0); });
process.on('SIGUSR2', () => { say({ msg: 'shutting down' }); setTimeout(() => process.exit(0), 20); });
if (process.env.PROBE_EXIT) { console.error('probe: failing at start'); process.exit(Number(process.env.PROBE_EXIT)); }
say({ msg: 'starting', pid: process.pid });
const hold = process.env.PROBE_HOLD;
const poll = setInterval(() => {
  if (hold && fs.existsSync(hold)) return;
  clearInterval(poll);
  say({ msg: 'ready', pid: process.pid, execArgv: process.execArgv, args: process.argv.slice(2), supervised: process.env.POSTLINE_SUPERVISED });
}, 10);
setInterval(() => undefined, 1000);
`;

const FAST: RestartPolicy = { initialDelayMs: 50, maxDelayMs: 400, stableAfterMs: 60_000, maxRapidFailures: 4, readyTimeoutMs: 20_000 };

function setup(t: { after(fn: () => unknown): void }, policy: RestartPolicy = FAST): { supervisor: Supervisor; dir: string; events: unknown[][] } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'supervisor-'));
  fs.writeFileSync(path.join(dir, 'probe.cjs'), PROBE);
  const supervisor = new Supervisor(path.join(dir, 'probe.cjs'), policy);
  const events: unknown[][] = [];
  for (const e of ['spawn', 'ready', 'exit', 'restart', 'give-up']) supervisor.on(e, (...a: unknown[]) => events.push([e, ...a]));
  t.after(async () => {
    await supervisor.stop(['probe'], 2000);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { supervisor, dir, events };
}

const readyLine = (l: Record<string, unknown>): string | undefined => (l.msg === 'ready' ? JSON.stringify(l) : undefined);
const count = (events: unknown[][], name: string): number => events.filter((e) => e[0] === name).length;

test('Supervisor: a stage runs with the production node flags, its arguments and the supervised marker; stop sends SIGTERM', { timeout: 30_000 }, async (t) => {
  const { supervisor } = setup(t);
  // The child's last line may be read after its exit event: wait for the line itself.
  const saidStopping = new Promise<void>((resolve) =>
    supervisor.on('line', (_name: string, line: Record<string, unknown> | string) => typeof line === 'object' && line.msg === 'stopping' && resolve()),
  );
  const started = await supervisor.start({ name: 'probe', args: ['renderer'], env: process.env, ready: readyLine });
  const ready = JSON.parse(started) as { execArgv: string[]; args: string[]; supervised: string };
  for (const flag of STAGE_NODE_FLAGS) assert.ok(ready.execArgv.includes(flag), `started with ${flag} (had ${ready.execArgv.join(' ')})`);
  assert.deepEqual(ready.args, ['renderer']);
  assert.equal(ready.supervised, '1');
  await supervisor.stop(['probe'], 5000);
  await saidStopping; // the child got SIGTERM and stopped itself (the test times out otherwise)
  assert.equal(supervisor.phase('probe'), 'stopped');
});

test('Supervisor: a child given its own node flags runs with those instead of the default ones', { timeout: 30_000 }, async (t) => {
  const { supervisor } = setup(t);
  const started = await supervisor.start({ name: 'probe', args: ['stages', 'a,b'], env: process.env, ready: readyLine, nodeFlags: ['--max-old-space-size=300'] });
  const ready = JSON.parse(started) as { execArgv: string[]; args: string[] };
  assert.deepEqual(ready.execArgv, ['--max-old-space-size=300']);
  assert.deepEqual(ready.args, ['stages', 'a,b']);
});

test('Supervisor: a child killed in every phase (ready, starting, shutting down on its own) is restarted each time', { timeout: 60_000 }, async (t) => {
  const { supervisor, dir, events } = setup(t);
  const hold = path.join(dir, 'hold');
  await supervisor.start({ name: 'probe', args: [], env: { ...process.env, PROBE_HOLD: hold }, ready: readyLine });

  // Ready: SIGKILL.
  fs.writeFileSync(hold, ''); // the replacement will wait in 'starting' until the file is gone
  process.kill(supervisor.pid('probe')!, 'SIGKILL');
  await waitFor(() => count(events, 'spawn') === 2 && supervisor.pid('probe'), 10_000, 'a replacement after a kill while ready');
  assert.equal(supervisor.phase('probe'), 'starting');

  // Starting (before it said ready): SIGKILL — the case the launcher used to give up on silently.
  process.kill(supervisor.pid('probe')!, 'SIGKILL');
  await waitFor(() => count(events, 'spawn') === 3 && supervisor.pid('probe'), 10_000, 'a replacement after a kill while starting');
  fs.rmSync(hold);
  await waitFor(() => supervisor.phase('probe') === 'ready', 10_000, 'the third process to be ready');

  // Shutting down on its own, exit code 0: nobody asked for it, so it is restarted too.
  process.kill(supervisor.pid('probe')!, 'SIGUSR2');
  await waitFor(() => count(events, 'ready') === 3 && supervisor.phase('probe') === 'ready', 10_000, 'a replacement after an unrequested clean exit');

  const restarts = events.filter((e) => e[0] === 'restart');
  assert.deepEqual(
    restarts.map((e) => [e[3], e[4], e[5]]),
    [
      [50, 'signal SIGKILL', 'ready'],
      [100, 'signal SIGKILL', 'starting'],
      [200, 'code 0', 'ready'],
    ],
    'each exit restarted, the backoff doubling while the failures come in a row',
  );
  assert.equal(count(events, 'give-up'), 0);
});

test('Supervisor: a child that keeps failing is given up on loudly, and start() rejects', { timeout: 30_000 }, async (t) => {
  const { supervisor, events } = setup(t);
  const gaveUp = new Promise<unknown[]>((resolve) => supervisor.once('give-up', (...a: unknown[]) => resolve(a)));
  await assert.rejects(supervisor.start({ name: 'probe', args: [], env: { ...process.env, PROBE_EXIT: '1' }, ready: readyLine }), (err: unknown) => {
    assert.ok(err instanceof SupervisedStartError);
    assert.match(err.message, /probe exited \(code 1\) and is not restarted: it failed 4 times in a row/);
    return true;
  });
  const [name, , failures] = await gaveUp;
  assert.equal(name, 'probe');
  assert.equal(failures, 4);
  assert.equal(count(events, 'spawn'), 4);
  assert.equal(supervisor.phase('probe'), 'given-up');
});

test('Supervisor: a child whose configuration is invalid (exit code 2) is not restarted', { timeout: 30_000 }, async (t) => {
  const { supervisor, events } = setup(t);
  await assert.rejects(supervisor.start({ name: 'probe', args: [], env: { ...process.env, PROBE_EXIT: '2' }, ready: readyLine }), /configuration is invalid/);
  assert.equal(count(events, 'spawn'), 1);
});

test('Supervisor: a child that never says ready is killed after the ready timeout and restarted', { timeout: 30_000 }, async (t) => {
  const { supervisor, dir, events } = setup(t, { ...FAST, readyTimeoutMs: 3000 });
  const hold = path.join(dir, 'hold');
  fs.writeFileSync(hold, '');
  const started = supervisor.start({ name: 'probe', args: [], env: { ...process.env, PROBE_HOLD: hold }, ready: readyLine });
  await waitFor(() => count(events, 'spawn') >= 2, 10_000, 'a restart after the ready timeout');
  assert.deepEqual(events.find((e) => e[0] === 'exit')?.slice(2, 5), [null, 'SIGKILL', 'starting']);
  fs.rmSync(hold);
  await started;
});

test('Supervisor: stop during a restart backoff starts nothing again', { timeout: 30_000 }, async (t) => {
  const { supervisor, events } = setup(t, { ...FAST, initialDelayMs: 500 });
  await supervisor.start({ name: 'probe', args: [], env: process.env, ready: readyLine });
  process.kill(supervisor.pid('probe')!, 'SIGKILL');
  await waitFor(() => supervisor.phase('probe') === 'backoff', 10_000, 'the backoff');
  await supervisor.stop(['probe'], 2000);
  await new Promise((r) => setTimeout(r, 700)); // past the backoff: it must not have spawned again
  assert.equal(count(events, 'spawn'), 1);
  assert.equal(supervisor.phase('probe'), 'stopped');
});

test('Supervisor: an on-demand child that exits 0 on its own is done, not restarted, and can be started again; killed, it is restarted', { timeout: 30_000 }, async (t) => {
  const { supervisor, events } = setup(t);
  const spec = { name: 'probe', args: [], env: process.env, ready: readyLine, onDemand: true };
  await supervisor.start(spec);
  process.kill(supervisor.pid('probe')!, 'SIGUSR2');
  await waitFor(() => supervisor.phase('probe') === 'stopped', 10_000, 'the on-demand child done');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(count(events, 'spawn'), 1, 'not restarted');
  assert.equal(count(events, 'restart'), 0);
  await supervisor.start(spec);
  assert.equal(count(events, 'spawn'), 2, 'started again on demand');
  process.kill(supervisor.pid('probe')!, 'SIGKILL');
  await waitFor(() => count(events, 'spawn') === 3 && supervisor.phase('probe') === 'ready', 10_000, 'a killed on-demand child restarted');
});
