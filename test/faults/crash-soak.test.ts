/**
 * Fault test 1 — crash soak. SOAK_MESSAGES messages go in through the API while a harness
 * SIGKILLs a stage (ingest, renderer, dispatcher, scheduler — each once per round, in a random
 * order) every KILL_EVERY_MS and restarts it, and kills and restarts the broker once. Some recipients answer 451 at first, so
 * the retry tiers and the scheduler are in play too. At the end every accepted message has
 * exactly one terminal outcome per recipient domain, and duplicate deliveries seen by the relay
 * are counted and reported (target: none lost, duplicates < 0.1%).
 *
 * CI keeps it at 3,000 messages so the file runs in about two minutes on a loaded 2-core machine
 * (POSTLINE_SOAK_MESSAGES overrides it); the 20,000-message soak, with poison inputs mixed in, is
 * `npm run bench -- soak` (test/bench/soak.bench.ts).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { TERMINAL_EVENTS, type EmailEvent } from '../../shared/contracts/email-event.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { waitFor } from '../helpers/broker.js';
import { FaultPipeline, messageIdOf, type Stage } from './fault-pipeline.js';
import { seededRandom } from '../helpers/seeded-random.js';

const SOAK_MESSAGES = Number(process.env.POSTLINE_SOAK_MESSAGES ?? 3000);
const KILL_EVERY_MS = 3000;
/** Kills go on at least this long (and until every message is accepted). */
const CHAOS_MS = 45_000;
const BATCH = 50;
const SENDERS = 4;
/** Every Nth message also goes to a second recipient domain. */
const SECOND_DOMAIN_EVERY = 10;
/** Every Nth recipient is greylisted (451) at its first attempt. */
const GREYLIST_EVERY = 25;
const STAGES: Stage[] = ['ingest', 'renderer', 'dispatcher', 'scheduler'];
const SEED = Number(process.env.POSTLINE_SOAK_SEED ?? 20250301);

let sink: SmtpSink;
let pipeline: FaultPipeline;
let passed = false;

after(async () => {
  await pipeline?.close(!passed);
  if (!passed && pipeline) process.stderr.write(`crash soak: stage and broker logs kept in ${pipeline.logDir}\n`);
  await sink?.close();
});

/** The stages in a random order: every stage is killed once per round. */
function shuffle<T>(items: T[], rand: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

function message(i: number): Record<string, unknown> {
  const to = [`u${i}@d${i % 13}.example`];
  if (i % SECOND_DOMAIN_EVERY === 0) to.push(`v${i}@e${i % 5}.example`);
  return { from: 'soak@sender.test', to, subject: `soak ${i}`, text: `message ${i}`, idempotencyKey: `soak-${SEED}-${i}` };
}

const domainsOf = (i: number): string[] => [`d${i % 13}.example`, ...(i % SECOND_DOMAIN_EVERY === 0 ? [`e${i % 5}.example`] : [])];

/** Sends every message until each is accepted (same idempotency key on every retry). */
async function sendAll(accepted: Array<string | undefined>): Promise<void> {
  const next = { i: 0 };
  const lane = async (): Promise<void> => {
    for (;;) {
      const start = next.i;
      if (start >= SOAK_MESSAGES) return;
      next.i += BATCH;
      let todo = Array.from({ length: Math.min(BATCH, SOAK_MESSAGES - start) }, (_, k) => start + k);
      while (todo.length > 0) {
        try {
          const ids = await pipeline.sendBatch(todo.map(message));
          todo.forEach((i, k) => (accepted[i] = ids[k] ?? accepted[i]));
          todo = todo.filter((_, k) => !ids[k]);
        } catch {
          // ingest (or the broker) is down: try again shortly
        }
        if (todo.length > 0) await sleep(250);
      }
    }
  };
  await Promise.all(Array.from({ length: SENDERS }, lane));
}

test(`crash soak: ${SOAK_MESSAGES} messages while stages are SIGKILLed every ${KILL_EVERY_MS} ms and the broker once`, async (t) => {
  sink = await startSmtpSink({ greetingDelay: false, script: (rcpt, ctx) => (Number(/\d+/.exec(rcpt)?.[0]) % GREYLIST_EVERY === 0 && ctx.attempt === 1 ? 451 : 250) });
  pipeline = await FaultPipeline.start({
    stages: STAGES,
    partitions: 3,
    env: {
      POSTLINE_DISPATCHER_RELAY_HOST: sink.host,
      POSTLINE_DISPATCHER_RELAY_PORT: String(sink.port),
      POSTLINE_RETRY_DELAY1M_MS: '1000',
      POSTLINE_RETRY_DELAY5M_MS: '2000',
      POSTLINE_RETRY_DELAY15M_MS: '3000',
      POSTLINE_RETRY_DELAY1H_MS: '4000',
      // A client's retry after an ingest crash may wait for a pending claim's lease.
      POSTLINE_INGEST_PRODUCE_TIMEOUT_MS: '5000',
      POSTLINE_INGEST_IDEMPOTENCY_LEASE_MS: '6000',
    },
  });
  const rand = seededRandom(SEED);
  const accepted: Array<string | undefined> = new Array(SOAK_MESSAGES);
  const started = Date.now();
  let sending = true;
  const sent = sendAll(accepted).finally(() => (sending = false));
  // Chaos for CHAOS_MS and until every message is accepted. A killed stage is restarted at once
  // without waiting for it to be ready: the next kill may hit it while it starts (any moment is
  // fair). The broker is killed once, half-way.
  let brokerKilled = false;
  let round: Stage[] = [];
  while (sending || Date.now() - started < CHAOS_MS) {
    await sleep(KILL_EVERY_MS);
    if (!brokerKilled && Date.now() - started >= CHAOS_MS / 2) {
      brokerKilled = true;
      await pipeline.crashBroker();
    } else {
      if (round.length === 0) round = shuffle(STAGES, rand);
      await pipeline.crashStage(round.pop()!, false);
    }
  }
  await sent;
  const acceptedAt = Date.now();
  await pipeline.allReady();

  // Every accepted (message, domain) ends in a terminal outcome.
  const expected = new Map<string, number>(); // `${id} ${domain}` → message index
  accepted.forEach((id, i) => domainsOf(i).forEach((d) => expected.set(`${id} ${d}`, i)));
  const terminal = (): Map<string, EmailEvent[]> => {
    const by = new Map<string, EmailEvent[]>();
    for (const e of pipeline.events()) {
      if (!TERMINAL_EVENTS.has(e.type) || !e.domain) continue;
      const k = `${e.messageId} ${e.domain}`;
      by.set(k, [...(by.get(k) ?? []), e]);
    }
    return by;
  };
  await waitFor(
    () => {
      const now = terminal();
      return [...expected.keys()].every((k) => now.has(k));
    },
    120_000,
    'a terminal event for every accepted message and domain',
  ).catch(() => undefined);
  const done = Date.now();

  const byKey = terminal();
  const lost = [...expected.keys()].filter((k) => !byKey.has(k));
  const conflicting = [...byKey].filter(([, es]) => new Set(es.map((e) => e.eventId)).size > 1);
  const republished = [...byKey.values()].reduce((n, es) => n + es.length - new Set(es.map((e) => e.eventId)).size, 0);
  const nonSent = [...byKey.values()].flat().filter((e) => e.type !== 'sent');
  const deliveries = new Map<string, number>();
  for (const m of sink.messages) for (const r of m.to) deliveries.set(`${messageIdOf(m.raw)} ${r}`, (deliveries.get(`${messageIdOf(m.raw)} ${r}`) ?? 0) + 1);
  const duplicates = [...deliveries.values()].reduce((n, c) => n + c - 1, 0);
  const acceptedIds = new Set(accepted);
  const strangers = [...deliveries.keys()].filter((k) => !acceptedIds.has(k.split('@')[0])).length;
  const recipients = [...expected.values()].length;

  t.diagnostic(
    `crash soak: ${SOAK_MESSAGES} messages (${expected.size} message-domain deliveries) accepted in ${((acceptedAt - started) / 1000).toFixed(0)} s, ` +
      `all settled ${((done - acceptedAt) / 1000).toFixed(0)} s later; restarts: ${pipeline.restarts.join(' ')}`,
  );
  t.diagnostic(
    `crash soak: lost ${lost.length}; conflicting terminal outcomes ${conflicting.length}; re-published outcome events ${republished}; ` +
      `duplicate deliveries at the relay ${duplicates} of ${sink.messages.length} (${((100 * duplicates) / Math.max(1, sink.messages.length)).toFixed(3)}%); unknown message ids ${strangers}`,
  );
  const dispatcherLog = pipeline.logLines('dispatcher');
  const skipped = dispatcherLog.filter((l) => l.msg === 'already handled; not sent again').reduce((n, l) => n + Number(l.recipients), 0);
  const recorded = dispatcherLog.filter((l) => String(l.msg).startsWith('outcome known but not yet recorded')).length;
  const seeded = dispatcherLog.filter((l) => String(l.msg).startsWith('recent delivery outcomes read')).map((l) => `${l.remembered}${l.complete ? '' : '(incomplete)'}`);
  t.diagnostic(
    `crash soak: the dispatcher skipped ${skipped} already-handled recipients of redelivered records and recorded ${recorded} known outcomes without resending; ` +
      `outcomes read back at each start: ${seeded.join(', ')}`,
  );
  // The duplicate window as the last dispatcher process measured it (the tail of the run).
  const recordedWin = await pipeline.histogram('dispatcher', 'postline_dispatch_duplicate_window_seconds', 'until="recorded"');
  const committedWin = await pipeline.histogram('dispatcher', 'postline_dispatch_duplicate_window_seconds', 'until="committed"');
  t.diagnostic(
    recordedWin.count > 0
      ? `crash soak: duplicate window over ${recordedWin.count} sends of the last dispatcher: 250 → sent event durable mean ${(recordedWin.mean * 1000).toFixed(1)} ms ` +
          `(p99 ≤ ${recordedWin.quantile(0.99) * 1000} ms); 250 → offset committed mean ${(committedWin.mean * 1000).toFixed(0)} ms (p99 ≤ ${committedWin.quantile(0.99) * 1000} ms)`
      : 'crash soak: the last dispatcher process sent nothing (every message was delivered before its start), so it measured no duplicate window',
  );
  assert.deepEqual(lost.slice(0, 10), [], `${lost.length} accepted deliveries without a terminal outcome`);
  assert.equal(conflicting.length, 0, `more than one terminal outcome: ${JSON.stringify(conflicting.slice(0, 3))}`);
  assert.deepEqual(nonSent.map((e) => `${e.type} ${e.reason}`).slice(0, 5), [], 'every delivery ended sent');
  for (const s of [...STAGES, 'broker']) assert.ok(pipeline.restarts.includes(s), `${s} was killed at least once: ${pipeline.restarts.join(' ')}`);
  // Zero loss is a guarantee and asserted exactly. Duplicates are a measured rate (reported
  // above; the target is < 0.1%): a kill inside the ~20 ms between a 250 and its durable event
  // can always cause one, so how many depends on where the random kills land. The bound here
  // catches the dedup ledger failing (without it this soak sees ~11%), not run-to-run noise.
  assert.ok(duplicates <= Math.ceil(recipients * 0.01), `${duplicates} duplicate deliveries of ${recipients}: the dedup ledger is not working (target < 0.1%, bound 1%)`);
  assert.equal(strangers, 0, 'no delivery of a message the client was never told about');
  passed = true;
});
