/**
 * `npm start` keeps the pipeline running while it is hurt (issue 16, items 4 and 5), with mail
 * flowing throughout:
 *  - an SMTP client reset mid-DATA against the capture server does not take the launcher down;
 *  - the process running the dispatcher (shared with the other stages but analytics) SIGKILLed
 *    while it delivers is restarted, and its replacement SIGKILLed before it is ready is
 *    restarted again;
 *  - the broker SIGKILLed is restarted on its port, and the stages carry on with it;
 *  - every accepted message is delivered;
 *  - a stage process that keeps dying is given up on loudly: every process is stopped and `npm start`
 *    exits 1 saying why.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '../helpers/broker.js';
import { startLauncher, portReleased, type Launcher } from './launcher-process.js';
import { resetMidDataUntil } from './smtp-reset.js';

let launcher: Launcher | undefined;
after(() => launcher?.destroy());

type Listed = { messageId: string };

/** Posts a message every few ms until stopped; keeps the ids of the accepted ones. */
function sender(l: Launcher): { accepted: Set<string>; stop(): Promise<void> } {
  const accepted = new Set<string>();
  let running = true;
  let n = 0;
  const loop = (async () => {
    while (running) {
      try {
        const res = await fetch(`http://127.0.0.1:${l.ports.api}/v1/emails`, {
          method: 'POST',
          headers: { authorization: `Bearer ${l.key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ from: 'load@example.com', to: [`u${n}@d${n % 7}.example`], subject: `load ${n++}`, text: 'x' }),
        });
        if (res.status === 202) accepted.add(((await res.json()) as { id: string }).id);
        else await res.body?.cancel();
      } catch {
        // the API is briefly away while the broker restarts; the sender tries again
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return {
    accepted,
    async stop() {
      running = false;
      await loop;
    },
  };
}

async function delivered(l: Launcher): Promise<Set<string>> {
  const list = (await (await fetch(`http://127.0.0.1:${l.ports.outbox}/v1/dev/outbox`)).json()) as { messages: Listed[] };
  return new Set(list.messages.map((m) => m.messageId));
}

/** The launcher's log has `re` after position `from`. */
const logged = (l: Launcher, re: RegExp, from = 0): boolean => re.test(l.output().slice(from));

test('npm start restarts what dies in any phase, survives a reset SMTP client, and gives up loudly on a stage that keeps dying', { timeout: 600_000 }, async () => {
  const l = (launcher = await startLauncher());
  const load = sender(l);
  await waitFor(() => load.accepted.size >= 20, 60_000, 'mail flowing');

  // Item 4: a client dies mid-DATA (the kernel resets its connection) — the launcher lives on.
  const health = async (): Promise<{ connectionErrors: number }> => (await fetch(`http://127.0.0.1:${l.ports.outbox}/healthz`)).json() as Promise<{ connectionErrors: number }>;
  await resetMidDataUntil(l.ports.smtp, async () => (await health()).connectionErrors > 0);
  assert.match(l.output(), /SMTP connection error; the server serves on/);
  assert.equal(l.proc.exitCode, null, 'the launcher is still running');

  // Item 5: the dispatcher's process killed while delivering, then its replacement killed before it is ready.
  const host = l.hostOf('dispatcher')!;
  const first = host.pid;
  let mark = l.output().length;
  process.kill(first, 'SIGKILL');
  const second = await waitFor(() => {
    const pid = l.hostOf('dispatcher')?.pid;
    return pid !== undefined && pid !== first ? pid : undefined;
  }, 30_000, 'a replacement dispatcher process');
  const back = new RegExp(`${host.name} is back`);
  assert.ok(!logged(l, back, mark), 'the replacement is not ready yet');
  process.kill(second, 'SIGKILL');
  await waitFor(() => logged(l, new RegExp(`${host.name} exited unexpectedly \\(signal SIGKILL, while starting\\); restarting`), mark), 30_000, 'the kill while starting to be seen');
  await waitFor(() => logged(l, back, mark), 120_000, 'the dispatcher process to be back after two kills');

  // The broker dies: it comes back on its port, the stages reconnect.
  mark = l.output().length;
  const before = load.accepted.size;
  process.kill(l.childPid('broker')!, 'SIGKILL');
  await waitFor(() => logged(l, /broker is back/, mark), 60_000, 'the broker to be back');
  await waitFor(() => load.accepted.size >= before + 20, 120_000, 'the API accepting mail again after the broker restart');
  await load.stop();

  // Nothing accepted is lost: every accepted message reaches the outbox (delivery is at least once).
  await waitFor(async () => {
    const got = await delivered(l);
    return [...load.accepted].every((id) => [...got].some((m) => m.includes(id)));
  }, 180_000, `all ${load.accepted.size} accepted messages in the outbox`);
  assert.equal(l.proc.exitCode, null, 'the launcher is still running');

  // A stage that keeps dying: after the policy's failures in a row npm start stops everything and exits 1.
  // Analytics: a process not hurt before, so its count of failures in a row starts at 0 (the
  // dispatcher's process has two recent ones, and shares its count with every stage in it).
  const dying = l.hostOf('analytics')!.name;
  const killed = new Set<number>();
  const killer = setInterval(() => {
    const pid = l.hostOf('analytics')?.pid;
    if (pid !== undefined && !killed.has(pid)) {
      killed.add(pid);
      process.kill(pid, 'SIGKILL');
    }
  }, 20);
  const code = await l.exited;
  clearInterval(killer);
  assert.equal(code, 1);
  assert.match(l.output(), new RegExp(`postline start: ${dying} exited \\(signal SIGKILL\\) and is not restarted: it failed 6 times in a row`));
  assert.match(l.output(), /Every process has been stopped\./);
  assert.equal(killed.size, 6);
  assert.deepEqual(l.children(), [], 'no process left behind');
  for (const port of [l.ports.api, l.ports.broker, l.ports.analytics, l.ports.smtp]) await portReleased(port);
});
