/**
 * The suppression list through the whole pipeline: ingest (in-process, `inject`), the embedded
 * broker, renderer, dispatcher (with the suppression feeder) and an SMTP sink as the relay that
 * answers 550 5.1.1 for one address. A recipient suppressed over the API is not sent to (a
 * `suppressed` event) while the other recipient of the same message is; a synchronous 550 5.1.1
 * suppresses the address for the next message; both hold after a dispatcher restart; the
 * tenant `acme/eu` is not affected by `acme`'s list.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { startTestBroker, waitFor, type TestBroker } from '../helpers/broker.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { TopicReader } from '../helpers/topic-reader.js';
import { loadPostlineConfig, type PostlineConfig } from '../../shared/config.js';
import { Topics } from '../../shared/topics.js';
import { EmailEventContract, type EmailEvent } from '../../shared/contracts/email-event.js';
import { startIngest, type IngestHandle } from '../../services/ingest/main.js';
import { hashApiKey } from '../../services/ingest/api-keys.js';
import { startRenderer, type RunningRenderer } from '../../services/renderer/main.js';
import { startDispatcher, type RunningDispatcher } from '../../services/dispatcher/main.js';

const KEYS = { acme: 'pl_test_suppression_acme_0123456789', 'acme/eu': 'pl_test_suppression_acme_eu_012345' } as const;
const silent = pino({ level: process.env.LOG_LEVEL ?? 'silent' });

let broker: TestBroker;
let sink: SmtpSink;
let config: PostlineConfig;
let ingest: IngestHandle;
let renderer: RunningRenderer;
let dispatcher: RunningDispatcher;
let reader: TopicReader;

before(async () => {
  broker = await startTestBroker();
  sink = await startSmtpSink({ greetingDelay: false, script: (rcpt) => (rcpt.startsWith('gone@') ? { code: 550, message: '5.1.1 <gone@example.org>: Recipient address rejected: User unknown in virtual mailbox table' } : 250) });
  config = loadPostlineConfig({
    env: {},
    overrides: {
      'log.level': 'silent',
      'kafka.brokers': [broker.bootstrap],
      'kafka.partitions': 2,
      'ops.host': '127.0.0.1',
      'ops.port': 0,
      'ingest.host': '127.0.0.1',
      'ingest.port': 0,
      'ingest.apiKeys': Object.entries(KEYS).map(([tenant, key]) => ({ tenant, keyHash: hashApiKey(key) })),
      'ingest.rateLimitMax': 0,
      'dispatcher.relay.host': sink.host,
      'dispatcher.relay.port': sink.port,
      'dispatcher.relay.ignoreTLS': true,
      'dispatcher.fetchMaxWaitMs': 100,
    },
  });
  ingest = await startIngest(config, { logger: silent, listen: false });
  renderer = await startRenderer(config, { logger: silent, ops: false });
  dispatcher = await startDispatcher(config, { logger: silent, ops: false });
  reader = await new TopicReader(broker.bootstrap, [Topics.events]).start();
});

after(async () => {
  await reader?.stop();
  await dispatcher?.close();
  await renderer?.close();
  await ingest?.close();
  await sink?.close();
  await broker?.destroy();
});

async function api(tenant: keyof typeof KEYS, method: 'POST' | 'GET', url: string, payload?: unknown): Promise<Record<string, any>> {
  const res = await ingest.app.inject({ method, url, headers: { authorization: `Bearer ${KEYS[tenant]}` }, ...(payload ? { payload: payload as object } : {}) });
  assert.ok(res.statusCode < 300, `${method} ${url}: ${res.statusCode} ${res.body}`);
  return res.json();
}

async function send(tenant: keyof typeof KEYS, to: string[]): Promise<string> {
  const r = await api(tenant, 'POST', '/v1/emails', { from: 'news@shop.example', to, subject: 'Hello', text: 'Hi' });
  return r.id ?? r.messageId;
}

const events = (): EmailEvent[] => reader.records.map((r) => EmailEventContract.decode(r.message.value));
/** The final outcome per recipient of a message (sent, bounced, suppressed), once all are in. */
async function outcomes(messageId: string, n: number): Promise<Map<string, string>> {
  return waitFor(
    () => {
      const m = new Map<string, string>();
      for (const e of events()) if (e.messageId === messageId && ['sent', 'bounced', 'suppressed'].includes(e.type)) for (const r of e.recipients ?? []) m.set(r, e.type === 'suppressed' ? `suppressed:${e.category}` : e.type);
      return m.size >= n ? m : undefined;
    },
    20_000,
    `outcomes of ${messageId}`,
  );
}

test('suppressed by API: not sent to, the other recipient is; a 550 5.1.1 suppresses the next message; both after a restart; acme/eu unaffected', async () => {
  await api('acme', 'POST', '/v1/suppressions', { address: 'Blocked@Example.org', note: 'asked us to stop' });
  await waitFor(() => dispatcher.suppressions?.isSuppressed('acme', 'blocked@example.org', undefined, Date.now()), 15_000, 'the dispatcher has the entry');

  const m1 = await send('acme', ['blocked@example.org', 'ok@example.org']);
  assert.deepEqual(Object.fromEntries(await outcomes(m1, 2)), { 'blocked@example.org': 'suppressed:manual', 'ok@example.org': 'sent' });
  const eu = await send('acme/eu', ['blocked@example.org']);
  assert.deepEqual(Object.fromEntries(await outcomes(eu, 1)), { 'blocked@example.org': 'sent' });
  assert.equal(sink.messagesTo('blocked@example.org').length, 1, 'only acme/eu\'s message reached blocked@');

  // A synchronous 550 5.1.1: bounced, then (the feeder) suppressed for acme.
  const m2 = await send('acme', ['gone@example.org']);
  assert.deepEqual(Object.fromEntries(await outcomes(m2, 1)), { 'gone@example.org': 'bounced' });
  await waitFor(() => dispatcher.suppressions?.isSuppressed('acme', 'gone@example.org', undefined, Date.now()), 20_000, 'the bounce is on the list');
  const listed = await api('acme', 'GET', '/v1/suppressions?address=gone');
  assert.equal(listed.items[0].reason, 'hard-bounce');
  assert.equal(listed.items[0].cause.messageId, m2);
  const m3 = await send('acme', ['gone@example.org', 'ok@example.org']);
  assert.deepEqual(Object.fromEntries(await outcomes(m3, 2)), { 'gone@example.org': 'suppressed:hard-bounce', 'ok@example.org': 'sent' });
  assert.equal(sink.rcptAttempts.get('gone@example.org'), 1);

  await dispatcher.close();
  dispatcher = await startDispatcher(config, { logger: silent, ops: false });
  const m4 = await send('acme', ['blocked@example.org', 'gone@example.org', 'ok@example.org']);
  assert.deepEqual(Object.fromEntries(await outcomes(m4, 3)), { 'blocked@example.org': 'suppressed:manual', 'gone@example.org': 'suppressed:hard-bounce', 'ok@example.org': 'sent' });
  assert.equal(sink.messagesTo('blocked@example.org').length, 1);
  assert.equal(sink.rcptAttempts.get('gone@example.org'), 1);
});
