/**
 * A hostile relay (issue 16 items 6 and 7), with the dispatcher and scheduler as processes: one
 * transaction that hangs after DATA, replies without a code (to RCPT and after DATA), a code that
 * makes no sense for the command, a TCP reset mid-DATA. Each of those messages is deferred and
 * arrives through the retry tiers — none is failed or dead-lettered — and the mail around them,
 * to the same and to other domains, keeps its idle latency meanwhile (measured: produce → the
 * relay's 250).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSmtpSink, type SinkMessage, type SmtpSink } from '../helpers/smtp-sink.js';
import { waitFor } from '../helpers/broker.js';
import { recordFor } from '../dispatcher/fleet-support.js';
import type { EmailReadyForDispatch } from '../../shared/contracts/email-ready-for-dispatch.js';
import { FaultPipeline } from './fault-pipeline.js';

const SOCKET_TIMEOUT_MS = 6000;
/** "Near idle" on a loaded 2-core machine; the hung transaction costs SOCKET_TIMEOUT_MS. */
const NEAR_IDLE_MS = 1000;
const DOMAINS = ['a.example', 'b.example', 'c.example', 'd.example', 'e.example', 'f.example'];

let sink: SmtpSink;
let pipeline: FaultPipeline;
/** When each address's message was answered 250 at the relay. */
const arrivedAt = new Map<string, number>();

before(async () => {
  sink = await startSmtpSink({
    greetingDelay: false,
    onMessage: (m: SinkMessage) => {
      for (const to of m.to) if (!arrivedAt.has(to)) arrivedAt.set(to, performance.now());
    },
    script: (rcpt, ctx) => {
      const first = ctx.attempt === 1;
      if (rcpt.startsWith('hang') && first) return 'stall-data';
      if (rcpt.startsWith('garbage-rcpt') && first) return 'garbage';
      if (rcpt.startsWith('garbage-data') && first) return 'garbage-data';
      if (rcpt.startsWith('code354') && first) return { raw: '354 go ahead' };
      // Reset twice: the immediate resend over another connection meets the second one.
      if (rcpt.startsWith('reset') && ctx.attempt <= 2) return 'reset-data';
      return 250;
    },
  });
  pipeline = await FaultPipeline.start({
    stages: ['dispatcher', 'scheduler'],
    partitions: 4,
    env: {
      POSTLINE_DISPATCHER_RELAY_HOST: sink.host,
      POSTLINE_DISPATCHER_RELAY_PORT: String(sink.port),
      POSTLINE_DISPATCHER_SOCKET_TIMEOUT_MS: String(SOCKET_TIMEOUT_MS),
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

const eventsOf = (messageId: string, type: 'deferred' | 'sent' | 'failed') => pipeline.events(type).filter((e) => e.messageId === messageId);

/** Produces each record on its own (as separate API calls would) and returns its produce time. */
async function produceOneByOne(records: EmailReadyForDispatch[]): Promise<Map<string, number>> {
  const producedAt = new Map<string, number>();
  for (const r of records) {
    producedAt.set(r.envelope.to[0], performance.now());
    await pipeline.produceDispatch([r]);
  }
  return producedAt;
}

/** produce → 250 at the relay, per address, once every one of them arrived. */
async function latencies(producedAt: Map<string, number>, what: string): Promise<number[]> {
  await waitFor(() => [...producedAt.keys()].every((to) => arrivedAt.has(to)), 30_000, what);
  return [...producedAt].map(([to, at]) => arrivedAt.get(to)! - at);
}

const fmt = (ms: number[]): string => `max ${Math.round(Math.max(...ms))} ms, mean ${Math.round(ms.reduce((a, b) => a + b, 0) / ms.length)} ms`;

let idle: number[] = [];

test('idle latency of 16 messages to six domains (the baseline)', async () => {
  const records = Array.from({ length: 16 }, (_, i) => recordFor([`idle${i}@${DOMAINS[i % DOMAINS.length]}`]));
  idle = await latencies(await produceOneByOne(records), 'idle messages delivered');
  console.log(`# idle: ${fmt(idle)}`);
});

test('one transaction hangs after DATA: 16 other messages to that and five other domains keep idle latency; the hung one times out, is deferred and arrives on retry', async () => {
  const hung = recordFor([`hang@${DOMAINS[0]}`]);
  const started = Date.now();
  const dataBefore = sink.dataReceived;
  await pipeline.produceDispatch([hung]);
  // The relay has the whole message and says nothing.
  await waitFor(() => sink.dataReceived > dataBefore, 10_000, 'the hung message reached DATA');
  const others = Array.from({ length: 16 }, (_, i) => recordFor([`flow${i}@${DOMAINS[i % DOMAINS.length]}`]));
  const during = await latencies(await produceOneByOne(others), 'other messages delivered while one transaction hangs');
  console.log(`# while one transaction hangs: ${fmt(during)} (idle ${fmt(idle)})`);
  assert.ok(Math.max(...during) < NEAR_IDLE_MS, `other mail waited behind the hung transaction: ${fmt(during)}`);
  assert.equal(eventsOf(hung.messageId, 'deferred').length, 0, 'the hung one is still in its transaction');

  const [deferred] = await waitFor(() => (eventsOf(hung.messageId, 'deferred').length ? eventsOf(hung.messageId, 'deferred') : undefined), 30_000, 'hung one deferred');
  assert.match(deferred.reason ?? '', /SMTP_TIMEOUT/);
  const elapsed = Date.parse(deferred.at) - started;
  assert.ok(elapsed >= SOCKET_TIMEOUT_MS - 200, `deferred after ${elapsed} ms, before the socket timeout`);
  const sent = await waitFor(() => eventsOf(hung.messageId, 'sent')[0], 30_000, 'hung message delivered on retry');
  assert.equal(sent.attempt, 2);
  assert.equal(sink.messagesTo(hung.envelope.to[0]).length, 1);
});

test('garbage replies, a nonsensical code and resets mid-DATA are deferred and retried, never failed; other mail flows meanwhile', async () => {
  const hostile = [
    recordFor([`garbage-rcpt@${DOMAINS[1]}`]),
    recordFor([`garbage-data@${DOMAINS[2]}`]),
    recordFor([`code354@${DOMAINS[3]}`]),
    recordFor([`reset@${DOMAINS[4]}`]),
  ];
  const others = Array.from({ length: 16 }, (_, i) => recordFor([`calm${i}@${DOMAINS[i % DOMAINS.length]}`]));
  const producedAt = new Map<string, number>();
  // Interleaved: each hostile message among the calm ones.
  for (const [i, r] of others.entries()) {
    if (i % 4 === 0) await pipeline.produceDispatch([hostile[i / 4]]);
    producedAt.set(r.envelope.to[0], performance.now());
    await pipeline.produceDispatch([r]);
  }
  const during = await latencies(producedAt, 'calm messages delivered among hostile ones');
  console.log(`# among hostile replies: ${fmt(during)} (idle ${fmt(idle)})`);
  assert.ok(Math.max(...during) < NEAR_IDLE_MS, `calm mail slowed down: ${fmt(during)}`);

  const expected: Array<[EmailReadyForDispatch, RegExp]> = [
    [hostile[0], /SMTP_PROTOCOL/],
    [hostile[1], /SMTP_PROTOCOL/],
    [hostile[2], /SMTP_PROTOCOL/],
    [hostile[3], /SMTP_CONNECTION/],
  ];
  for (const [r, reason] of expected) {
    const to = r.envelope.to[0];
    const [d] = await waitFor(() => (eventsOf(r.messageId, 'deferred').length ? eventsOf(r.messageId, 'deferred') : undefined), 20_000, `${to} deferred`);
    assert.match(d.reason ?? '', reason, to);
    const sent = await waitFor(() => eventsOf(r.messageId, 'sent')[0], 20_000, `${to} delivered on retry`);
    assert.equal(sent.attempt, 2, to);
    assert.equal(sink.messagesTo(to).length, 1, to);
    assert.equal(eventsOf(r.messageId, 'failed').length, 0, `${to} failed`);
  }
  assert.equal(pipeline.deadLetters().length, 0, 'nothing dead-lettered');
});
