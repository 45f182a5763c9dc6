/**
 * `npm start` adds a renderer process while there is a backlog to render, and lets it go when
 * there is none (services/embedded/render-helper.ts): a batch past `--second-renderer-at` starts
 * it, it takes the renderer's partitions from the co-hosted stages process (the preferred member:
 * shared/kafka/preferred-assigner.ts), it stops itself after `--second-renderer-idle` seconds without
 * a backlog — not restarted, not a failure — and the co-hosted renderer has the partitions
 * back: the next message is delivered at once. Every accepted message is delivered throughout, and
 * the next backlog starts a second renderer again.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '../helpers/broker.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { startLauncher, type Launcher } from './launcher-process.js';

let launcher: Launcher | undefined;
let sink: SmtpSink | undefined;
after(async () => {
  await launcher?.destroy();
  await sink?.close();
});

/** Posts `n` messages through the batch API, 250 a request, all requests at once (a backlog forms); the recipients are `<tag>.<i>@d<i % 5>.example`. */
async function postBatch(l: Launcher, tag: string, n: number): Promise<string[]> {
  const rcpts = Array.from({ length: n }, (_, i) => `${tag}.${i}@d${i % 5}.example`);
  const requests = [];
  for (let from = 0; from < n; from += 250) {
    const messages = rcpts.slice(from, from + 250).map((to) => ({ from: 'load@example.com', to: [to], subject: `${tag} ${to}`, text: 'Rendered by whichever renderer holds the partition.', html: '<p>Rendered by <b>whichever</b> renderer holds the partition.</p>' }));
    requests.push(
      fetch(`http://127.0.0.1:${l.ports.api}/v1/emails/batch`, {
        method: 'POST',
        headers: { authorization: `Bearer ${l.key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ messages }),
      }).then(async (res) => {
        const body = await res.text();
        assert.equal(res.status, 202, body);
      }),
    );
  }
  await Promise.all(requests);
  return rcpts;
}

const count = (text: string, needle: string): number => text.split(needle).length - 1;

async function allDelivered(s: SmtpSink, rcpts: string[], timeoutMs: number): Promise<void> {
  await waitFor(() => rcpts.every((r) => s.messagesTo(r).length > 0), timeoutMs, `${rcpts.length} messages delivered (${rcpts.filter((r) => s.messagesTo(r).length > 0).length} so far)`);
}

test('npm start: a backlog starts a second renderer that takes the rendering over, and it stops itself once idle; nothing is lost', { timeout: 300_000 }, async () => {
  sink = await startSmtpSink({ greetingDelay: false });
  launcher = await startLauncher({ POSTLINE_DISPATCHER_RELAY_HOST: sink.host, POSTLINE_DISPATCHER_RELAY_PORT: String(sink.port) }, 180_000, ['--second-renderer-at', '200', '--second-renderer-idle', '4']);
  const l = launcher;
  assert.ok(l.commandLines().some((c) => c.includes('--signal-render-backlog 200')), `the co-hosted stages process watches its backlog:\n${l.commandLines().join('\n')}`);

  const first = await postBatch(l, 'one', 3000);
  await waitFor(() => l.output().includes('starting a second renderer process'), 60_000, 'the launcher starting a second renderer');
  await waitFor(() => l.output().includes('second renderer ready'), 60_000, 'the second renderer ready');
  const helper = l.commandLines().find((c) => c.includes('stages renderer --exit-when-idle 4000 --preferred-renderer'));
  assert.ok(helper, `a second renderer process runs:\n${l.commandLines().join('\n')}`);
  assert.match(helper, /--max-semi-space-size=16 --heap-growing-percent=100/, 'with V8\'s default young generation and a heap that grows at most 2×');
  // The preferred member holds every partition of the renderer's groups: the broker logs the
  // rebalance to two members for each lane's group.
  await waitFor(() => /group rebalanced.*"group":"postline-renderer-transactional".*"members":2/.test(l.output()), 30_000, 'the transactional lane rebalanced to two members');
  await allDelivered(sink, first, 180_000);

  // Idle for 4 s: it stops itself; the launcher says so and does not restart it.
  await waitFor(() => l.output().includes('second renderer stopped: no backlog'), 60_000, 'the second renderer stopping itself');
  await waitFor(() => !l.commandLines().some((c) => c.includes('--exit-when-idle')), 10_000, 'the second renderer process gone');
  assert.doesNotMatch(l.output(), /second-renderer exited unexpectedly/);
  // The co-hosted renderer has the partitions back: a message now is rendered and delivered.
  const t0 = Date.now();
  const [single] = await postBatch(l, 'after', 1);
  await allDelivered(sink, [single], 20_000);
  assert.ok(Date.now() - t0 < 15_000, `delivered ${Date.now() - t0} ms after the second renderer left`);

  // The next backlog starts one again.
  const starts = count(l.output(), 'starting a second renderer process');
  const second = await postBatch(l, 'two', 3000);
  await waitFor(() => count(l.output(), 'starting a second renderer process') > starts, 60_000, 'a second renderer started again');
  await allDelivered(sink, second, 180_000);
  // Each message at least once (at-least-once across rebalances); the launcher stays up.
  assert.equal(l.proc.exitCode, null);
});
