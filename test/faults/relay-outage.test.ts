/**
 * Fault test 2 — relay outage: a steady stream of messages goes through the dispatcher (a
 * process, default breaker settings: 5 failures in 10 s, probe after 5 s) to a primary relay
 * with one fallback. Mid-run the primary stops accepting connections (and its open sessions
 * break). Traffic must reach the fallback within 1 s, the primary's breaker must open after at
 * most its threshold of failed connections, probe once it is back, close, and take the traffic
 * back — with every message sent.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { startTcpGate, type TcpGate } from '../helpers/tcp-gate.js';
import { waitFor } from '../helpers/broker.js';
import { recordFor } from '../dispatcher/fleet-support.js';
import { FaultPipeline } from './fault-pipeline.js';
import type { EmailReadyForDispatch } from '../../shared/contracts/email-ready-for-dispatch.js';

/** Messages per second in the stream. */
const RATE = 40;
const THRESHOLD = 5;

let primary: SmtpSink;
let fallback: SmtpSink;
let gate: TcpGate;
let pipeline: FaultPipeline;

after(async () => {
  await pipeline?.close();
  await gate?.close();
  await primary?.close();
  await fallback?.close();
});

test('primary relay down mid-run: fallback within 1 s, breaker opens at its threshold, probes and closes when the primary returns, nothing lost', async (t) => {
  primary = await startSmtpSink({ greetingDelay: false });
  fallback = await startSmtpSink({ greetingDelay: false });
  gate = await startTcpGate(primary.port);
  pipeline = await FaultPipeline.start({
    stages: ['dispatcher'],
    env: {
      POSTLINE_DISPATCHER_RELAY_HOST: gate.host,
      POSTLINE_DISPATCHER_RELAY_PORT: String(gate.port),
      POSTLINE_DISPATCHER_RELAY_FALLBACK_HOSTS: `127.0.0.1:${fallback.port}`,
      POSTLINE_DISPATCHER_BREAKER_FAILURE_THRESHOLD: String(THRESHOLD),
    },
  });
  const dispatcher = pipeline.procs.get('dispatcher')!;
  const primaryKey = `127.0.0.1:${gate.port}`;
  const produced: EmailReadyForDispatch[] = [];
  let streaming = true;
  const stream = (async () => {
    for (let i = 0; streaming; i++) {
      const r = recordFor([`s${i}@example.org`], { priority: i % 3 === 0 ? 'critical' : 'transactional' });
      produced.push(r);
      await pipeline.produceDispatch([r]);
      await sleep(1000 / RATE);
    }
  })();

  await waitFor(() => primary.messages.length >= 40, 20_000, 'traffic through the primary');
  await gate.down();
  const downAt = Date.now();
  await fallback.waitForMessages(1, 10_000);
  const switchMs = fallback.messages[0].at - downAt;
  const opened = await dispatcher.waitForLine((l) => l.host === primaryKey && String(l.msg).startsWith('circuit breaker opened'), 15_000, 'breaker opened');
  assert.ok(Number(opened.failures) <= THRESHOLD, `opened after ${opened.failures} failures`);
  const failures = await pipeline.metric('dispatcher', 'postline_smtp_connect_failures_total', `host="${primaryKey}"`);
  await waitFor(() => fallback.messages.length >= 40, 20_000, 'traffic through the fallback');

  await gate.up();
  const upAt = Date.now();
  await dispatcher.waitForLine((l) => l.host === primaryKey && String(l.msg).startsWith('circuit breaker half-open'), 15_000, 'probe');
  await dispatcher.waitForLine((l) => l.host === primaryKey && String(l.msg).startsWith('circuit breaker closed'), 15_000, 'breaker closed');
  const closedAt = Date.now();
  const onPrimaryBefore = primary.messages.length;
  await waitFor(() => primary.messages.length >= onPrimaryBefore + 40, 20_000, 'traffic back on the primary');
  streaming = false;
  await stream;

  const sent = await pipeline.waitForEvents(produced.length, 'sent', 30_000);
  assert.deepEqual(new Set(sent.map((e) => e.messageId)), new Set(produced.map((r) => r.messageId)), 'every message sent');
  assert.equal(pipeline.events('deferred').length, 0, 'nothing waited for a retry tier');
  const delivered = [...primary.messages, ...fallback.messages].map((m) => m.to[0]);
  const duplicates = delivered.length - new Set(delivered).size;
  assert.ok(switchMs < 1000, `first message via the fallback ${switchMs} ms after the primary went down`);
  assert.ok(failures <= THRESHOLD + 2, `${failures} failed connections to the dead primary`);
  assert.equal(await pipeline.metric('dispatcher', 'postline_smtp_breaker_state', `host="${primaryKey}"`), 0);
  t.diagnostic(
    `relay outage: fallback after ${switchMs} ms; breaker opened after ${opened.failures} failures (${failures} failed connections in all); ` +
      `closed ${closedAt - upAt} ms after the primary returned; ${produced.length} messages, ${duplicates} delivered twice (cut off after DATA)`,
  );
  // Only a message whose 250 was cut off with the connection may arrive twice.
  assert.ok(duplicates <= 5, `${duplicates} duplicates`);
});
