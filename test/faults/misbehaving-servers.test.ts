/**
 * Fault test 6 — misbehaving servers, with the dispatcher and scheduler as processes: a relay
 * that accepts connections and never greets, one that stalls mid-DATA, one that drops the
 * connection after DATA. Each attempt ends within its configured limit, the message goes through
 * the retry tier and arrives, and the fleet keeps serving other mail meanwhile.
 *
 * The fleet-level behaviour of each case (timeouts, replacing broken connections, the one
 * immediate resend after a drop) is tested in test/dispatcher/smtp-fleet.test.ts; this file adds
 * the retry path through real processes and the recovery of the whole.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { waitFor } from '../helpers/broker.js';
import { recordFor } from '../dispatcher/fleet-support.js';
import { FaultPipeline } from './fault-pipeline.js';

const GREETING_TIMEOUT_MS = 800;
const SOCKET_TIMEOUT_MS = 1500;
/** A timeout fires a little late on a loaded machine; deferring takes a produce or two. */
const SLACK_MS = 1500;

/** The relay starts out never greeting (so the fleet has no live connection to fall back on). */
let greet = false;
let sink: SmtpSink;
let pipeline: FaultPipeline;

before(async () => {
  sink = await startSmtpSink({
    greetingDelay: false,
    connect: () => (greet ? 'greet' : 'hang'),
    script: (rcpt, ctx) => {
      if (rcpt.startsWith('stall') && ctx.attempt === 1) return 'stall-data';
      if (rcpt.startsWith('drop') && ctx.attempt <= 2) return 'drop-after-data';
      return 250;
    },
  });
  pipeline = await FaultPipeline.start({
    stages: ['dispatcher', 'scheduler'],
    env: {
      POSTLINE_DISPATCHER_RELAY_HOST: sink.host,
      POSTLINE_DISPATCHER_RELAY_PORT: String(sink.port),
      POSTLINE_DISPATCHER_GREETING_TIMEOUT_MS: String(GREETING_TIMEOUT_MS),
      POSTLINE_DISPATCHER_SOCKET_TIMEOUT_MS: String(SOCKET_TIMEOUT_MS),
      POSTLINE_DISPATCHER_BREAKER_HALF_OPEN_AFTER_MS: '1000',
      POSTLINE_RETRY_DELAY1M_MS: '500',
      POSTLINE_RETRY_DELAY5M_MS: '1000',
      POSTLINE_RETRY_DELAY15M_MS: '1500',
      POSTLINE_RETRY_DELAY1H_MS: '2000',
    },
  });
});

after(async () => {
  await pipeline?.close();
  await sink?.close();
});

function deferredOf(messageId: string) {
  return pipeline.events('deferred').filter((e) => e.messageId === messageId);
}

test('a relay that never greets: attempts end at the greeting timeout (then its breaker opens), and the messages arrive once it greets again', async () => {
  const records = Array.from({ length: 3 }, (_, i) => recordFor([`greet${i}@example.org`]));
  const started = Date.now();
  await pipeline.produceDispatch(records);
  for (const r of records) await waitFor(() => deferredOf(r.messageId).length > 0, 20_000, `deferred ${r.messageId}`);
  for (const r of records) {
    const first = deferredOf(r.messageId)[0];
    assert.match(first.reason ?? '', /SMTP_GREETING_TIMEOUT|SMTP_BREAKER_OPEN/);
    assert.ok(Date.parse(first.at) - started < GREETING_TIMEOUT_MS + SLACK_MS, `deferred after ${Date.parse(first.at) - started} ms`);
  }
  assert.ok(deferredOf(records[0].messageId).concat(deferredOf(records[1].messageId)).some((e) => /GREETING_TIMEOUT/.test(e.reason ?? '')));
  greet = true;
  const sent = await waitFor(() => {
    const s = pipeline.events('sent').filter((e) => records.some((r) => r.messageId === e.messageId));
    return s.length === records.length ? s : undefined;
  }, 30_000, 'delivered after the relay greets again');
  assert.ok(sent.every((e) => e.attempt! >= 2));
  for (const r of records) assert.equal(sink.messagesTo(r.envelope.to[0]).length, 1);
});

test('stalled mid-DATA: that attempt ends at the socket timeout while other mail keeps flowing; the retry arrives', async () => {
  const stalled = recordFor(['stall@example.org']);
  const others = Array.from({ length: 10 }, (_, i) => recordFor([`flow${i}@example.org`]));
  const started = Date.now();
  await pipeline.produceDispatch([stalled, ...others]);
  await waitFor(() => others.every((r) => sink.messagesTo(r.envelope.to[0]).length === 1), SOCKET_TIMEOUT_MS, 'others delivered while one transaction stalls');
  await waitFor(() => deferredOf(stalled.messageId).length > 0, 20_000, 'stalled one deferred');
  const [deferred] = deferredOf(stalled.messageId);
  assert.match(deferred.reason ?? '', /SMTP_TIMEOUT/);
  const elapsed = Date.parse(deferred.at) - started;
  assert.ok(elapsed >= SOCKET_TIMEOUT_MS - 100 && elapsed < SOCKET_TIMEOUT_MS + SLACK_MS, `timed out after ${elapsed} ms`);
  const sent = await waitFor(() => pipeline.events('sent').find((e) => e.messageId === stalled.messageId), 20_000, 'stalled message delivered on retry');
  assert.equal(sent.attempt, 2);
  assert.equal(sink.messagesTo('stall@example.org').length, 1);
});

test('dropped after DATA: resent once on a new connection, then deferred; the retry arrives exactly once', async () => {
  const dropped = recordFor(['drop@example.org']);
  await pipeline.produceDispatch([dropped]);
  await waitFor(() => deferredOf(dropped.messageId).length > 0, 20_000, 'dropped one deferred');
  assert.match(deferredOf(dropped.messageId)[0].reason ?? '', /SMTP_CONNECTION/);
  assert.equal(sink.rcptAttempts.get('drop@example.org'), 2, 'one immediate resend over another connection');
  const sent = await waitFor(() => pipeline.events('sent').find((e) => e.messageId === dropped.messageId), 20_000, 'delivered on retry');
  assert.equal(sent.attempt, 2);
  assert.equal(sink.messagesTo('drop@example.org').length, 1);
  // The fleet recovered: fresh mail goes straight through.
  const after = recordFor(['fine@example.org']);
  await pipeline.produceDispatch([after]);
  await waitFor(() => sink.messagesTo('fine@example.org').length === 1, 10_000, 'fresh mail delivered');
});
