/**
 * Circuit breakers and fallback relays through the real dispatcher: a primary relay that goes
 * down sends traffic to the fallback at once, its breaker opens at the threshold and keeps new
 * connections away, one probe after the pause closes it again, and with every host down the
 * message is deferred to the retry tiers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '../helpers/broker.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { startTcpGate, type TcpGate } from '../helpers/tcp-gate.js';
import { startHarness } from './dispatcher-harness.js';
import { recordFor } from './fleet-support.js';

const BREAKER = { 'dispatcher.breaker.failureThreshold': 5, 'dispatcher.breaker.windowMs': 10_000, 'dispatcher.breaker.halfOpenAfterMs': 1500 };

test('primary down: traffic moves to the fallback at once, the breaker opens, probes and closes when the primary returns', async (t) => {
  let gate!: TcpGate;
  let fallback!: SmtpSink;
  const h = await startHarness({}, { ...BREAKER, 'dispatcher.concurrencyTransactional': 8 }, async (primary) => {
    gate = await startTcpGate(primary.port);
    fallback = await startSmtpSink({ greetingDelay: false });
    return { 'dispatcher.relay.port': gate.port, 'dispatcher.relay.fallbackHosts': [`127.0.0.1:${fallback.port}`] };
  });
  t.after(async () => {
    await h.close();
    await gate.close();
    await fallback.close();
  });
  const primaryKey = `127.0.0.1:${gate.port}`;
  const fallbackKey = `127.0.0.1:${fallback.port}`;

  await h.produce(Array.from({ length: 10 }, (_, i) => recordFor([`before${i}@example.org`])));
  await h.waitForEvents(10, 'sent');
  assert.equal(h.sink.messages.length, 10, 'all through the primary while it is up');

  await gate.down();
  const downAt = Date.now();
  const during = Array.from({ length: 40 }, (_, i) => recordFor([`during${i}@example.org`]));
  await h.produce(during);
  await fallback.waitForMessages(40, 15_000);
  const firstViaFallback = Math.min(...fallback.messages.map((m) => m.at));
  assert.ok(firstViaFallback - downAt < 1000, `first message via the fallback ${firstViaFallback - downAt} ms after the primary went down`);
  await waitFor(async () => (await h.metric('postline_smtp_breaker_state', `host="${primaryKey}"`)) === 2, 5000, 'primary breaker open');
  assert.equal(h.retries().length, 0, 'nothing waited for a retry tier');
  const sentDuring = (await h.waitForEvents(50, 'sent')).filter((e) => e.recipients?.[0]?.startsWith('during'));
  assert.ok(sentDuring.every((e) => e.smtp?.host === fallbackKey));
  assert.ok((await h.metric('postline_dispatch_fallback_total', `host="${fallbackKey}"`)) >= 40);
  // At most the threshold of connection attempts reached the dead primary, plus the in-flight tries.
  assert.ok((await h.metric('postline_smtp_connect_failures_total', `host="${primaryKey}"`)) <= 5 + 8);

  // Back up while the breaker is still open: no connection is attempted until the probe.
  const acceptedBefore = gate.accepted;
  await gate.up();
  await h.produce([recordFor(['while-open@example.org'])]);
  await fallback.waitForMessages(41);
  assert.equal(gate.accepted, acceptedBefore, 'no connection to the primary while its breaker is open');

  await waitFor(async () => (await h.metric('postline_smtp_breaker_state', `host="${primaryKey}"`)) === 0, 10_000, 'primary breaker closed again');
  assert.equal(gate.accepted, acceptedBefore + 1, 'exactly one probe connection');
  await h.produce(Array.from({ length: 10 }, (_, i) => recordFor([`after${i}@example.org`])));
  await h.waitForEvents(61, 'sent');
  assert.equal(h.sink.messages.filter((m) => m.to[0].startsWith('after')).length, 10, 'traffic is back on the primary');
  for (const to of ['open', 'half-open', 'closed']) assert.equal(await h.metric('postline_smtp_breaker_transitions_total', `host="${primaryKey}"`, `to="${to}"`), 1, to);
  assert.equal(new Set(h.events('sent').map((e) => e.messageId)).size, 61, 'each message sent once');
});

test('breaker open on the only host: deferred to the retry tier as BREAKER_OPEN without a connection attempt', async (t) => {
  let gate!: TcpGate;
  const h = await startHarness({}, { ...BREAKER, 'dispatcher.breaker.failureThreshold': 2, 'dispatcher.breaker.halfOpenAfterMs': 60_000, 'dispatcher.fleet.warmConnections': 0 }, async (primary) => {
    gate = await startTcpGate(primary.port);
    await gate.down();
    return { 'dispatcher.relay.port': gate.port };
  });
  t.after(async () => {
    await h.close();
    await gate.close();
  });
  await h.produce([recordFor(['one@example.org']), recordFor(['two@example.org'])]);
  await h.waitForEvents(2, 'deferred');
  await waitFor(async () => (await h.metric('postline_smtp_breaker_state')) === 2, 5000, 'breaker open');
  const failures = await h.metric('postline_smtp_connect_failures_total');
  await h.produce([recordFor(['three@example.org'], { priority: 'critical' })]);
  const deferred = await h.waitForEvents(3, 'deferred');
  const third = deferred.find((e) => e.recipients?.[0] === 'three@example.org')!;
  assert.match(third.reason ?? '', /SMTP_BREAKER_OPEN/);
  assert.ok(third.nextAttemptAt, 'a retry is scheduled');
  assert.equal(await h.metric('postline_smtp_connect_failures_total'), failures, 'no connection attempted while open');
  await waitFor(() => h.retries().length === 3, 5000, 'three retry records');
  assert.equal(h.events('bounced').length + h.events('failed').length, 0);
});
