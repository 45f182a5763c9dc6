/**
 * A stage killed mid-flight (SIGKILL: no LeaveGroup) holds its group membership until its
 * session lapses, and its replacement cannot join before: that wait is most of a replacement's
 * spawn → ready time. The session timeout is `kafka.sessionTimeoutMs` (npm start: 10 s).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { startTestBroker, uniqueName } from '../helpers/broker.js';

const MEMBER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'group-member.ts');

/** Starts a member process; resolves with its pid and when it joined. */
function member(bootstrap: string, group: string, topic: string, sessionTimeoutMs: number): Promise<{ kill(): void; exited: Promise<void>; joined: Promise<number> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', MEMBER, group, topic], {
    env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('POSTLINE_'))), POSTLINE_KAFKA_BROKERS: bootstrap, POSTLINE_KAFKA_SESSION_TIMEOUT_MS: String(sessionTimeoutMs) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const joined = new Promise<number>((resolve, reject) => {
    readline.createInterface({ input: child.stdout! }).on('line', (l) => l.includes('"joined"') && resolve(performance.now()));
    void exited.then(() => reject(new Error('the member exited before it joined')));
  });
  joined.catch(() => undefined);
  return Promise.resolve({ kill: () => child.kill('SIGKILL'), exited, joined });
}

test('a killed member\'s replacement joins its group within the configured session timeout, not kafkajs\'s 30 s', { timeout: 120_000 }, async (t) => {
  const broker = await startTestBroker();
  t.after(() => broker.destroy());
  const group = uniqueName('group');
  const topic = uniqueName('topic');
  const SESSION_MS = 6000;
  const first = await member(broker.bootstrap, group, topic, SESSION_MS);
  t.after(() => first.kill());
  await first.joined;
  first.kill();
  await first.exited;
  const killedAt = performance.now();
  const second = await member(broker.bootstrap, group, topic, SESSION_MS);
  t.after(() => second.kill());
  const joinedAt = await second.joined;
  const waited = joinedAt - killedAt;
  // kafkajs's default session (30 s) would keep the dead member, and the replacement out, ≥ 29 s.
  assert.ok(waited < 20_000, `the replacement joined ${Math.round(waited)} ms after the kill (session ${SESSION_MS} ms)`);
  process.stdout.write(`# replacement joined ${Math.round(waited)} ms after the kill\n`);
});
