/**
 * Group membership as stages live it under npm start, on the Postline broker (a 30 s session,
 * fetches that wait up to 10 s):
 * - A stage killed mid-flight (SIGKILL: no LeaveGroup) would hold its membership until its
 *   session lapsed, and its replacement could not join before; its connections close with it,
 *   and the broker removes it then (services/broker/groups/group-coordinator.ts).
 * - A member waiting in a long fetch hears of a rebalance only from the heartbeat kafkajs sends
 *   between fetches; the broker ends that fetch when its group starts to rebalance, so a new
 *   member is in within seconds, not after the 10 s wait.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { startTestBroker, uniqueName, waitFor } from '../helpers/broker.js';

const MEMBER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'group-member.ts');

interface Member {
  kill(): void;
  exited: Promise<void>;
  /** When it first had its assignment, and how long its JoinGroup → assignment took. */
  joined: Promise<{ at: number; duration: number }>;
  /** How many times it has had an assignment. */
  joins(): number;
}

/** Starts a member process with npm start's Kafka settings (none of this machine's POSTLINE_*): a 30 s session, 10 s fetch waits. */
function member(bootstrap: string, group: string, topic: string): Member {
  const child = spawn(process.execPath, ['--import', 'tsx', MEMBER, group, topic], {
    env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('POSTLINE_'))), POSTLINE_KAFKA_BROKERS: bootstrap, POSTLINE_KAFKA_FETCH_MAX_WAIT_MS: '10000' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let joins = 0;
  const joined = new Promise<{ at: number; duration: number }>((resolve, reject) => {
    readline.createInterface({ input: child.stdout! }).on('line', (l) => {
      if (!l.includes('"joined"')) return;
      joins++;
      resolve({ at: performance.now(), duration: (JSON.parse(l) as { duration: number }).duration });
    });
    void exited.then(() => reject(new Error('the member exited before it joined')));
  });
  joined.catch(() => undefined);
  return { kill: () => child.kill('SIGKILL'), exited, joined, joins: () => joins };
}

/** A broker and a group with one member that has joined; `next()` starts another member of it. */
async function groupOfOne(t: TestContext): Promise<{ first: Member; next: () => Member }> {
  const broker = await startTestBroker();
  t.after(() => broker.destroy());
  const group = uniqueName('group');
  const topic = uniqueName('topic');
  const next = (): Member => {
    const m = member(broker.bootstrap, group, topic);
    t.after(() => m.kill());
    return m;
  };
  const first = next();
  await first.joined;
  return { first, next };
}

test('a killed member\'s replacement joins its group at once, not after the 30 s session', { timeout: 120_000 }, async (t) => {
  const { first, next } = await groupOfOne(t);
  first.kill();
  await first.exited;
  const { duration } = await next().joined;
  // With the dead member kept for its session, the replacement's JoinGroup waits ≥ 25 s for it.
  assert.ok(duration < 5_000, `the replacement's join took ${duration} ms`);
  process.stdout.write(`# the replacement's JoinGroup → assignment: ${duration} ms\n`);
});

test('a member joining a group whose member waits in a 10 s fetch is in within seconds', { timeout: 120_000 }, async (t) => {
  const { first, next } = await groupOfOne(t);
  // The first member is in its long fetch by now (nothing to read).
  await new Promise((r) => setTimeout(r, 1500));
  const { duration } = await next().joined;
  // The first must rejoin before the second gets in: kafkajs heartbeats (and so hears of the
  // rebalance) after a fetch once its 3 s heartbeat interval has passed, not before.
  assert.ok(duration < 5_000, `the second member's join took ${duration} ms`);
  // The first member's own "joined" line may reach this process a moment after the second's.
  await waitFor(() => first.joins() >= 2, 5_000, 'the first member rejoined');
  process.stdout.write(`# the second member's JoinGroup → assignment: ${duration} ms\n`);
});
