/**
 * Priorities are isolated from the request on (issue 10 §2): a bulk backlog posted through the
 * API and queued in front of the renderer does not delay a critical message posted after it.
 * The whole path runs for real — ingest (in-process, `inject`), the embedded broker, renderer,
 * dispatcher and an SMTP sink — and the check is an order, not a duration: the critical message
 * reaches the relay while most of the bulk backlog is still waiting to be rendered.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { startTestBroker, uniqueName, waitFor, type TestBroker } from '../helpers/broker.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { TopicReader } from '../helpers/topic-reader.js';
import { loadPostlineConfig, type PostlineConfig } from '../../shared/config.js';
import { Topics } from '../../shared/topics.js';
import { startIngest, type IngestHandle } from '../../services/ingest/main.js';
import { hashApiKey } from '../../services/ingest/api-keys.js';
import { startRenderer, type RunningRenderer } from '../../services/renderer/main.js';
import { startDispatcher, type RunningDispatcher } from '../../services/dispatcher/main.js';

const KEY = 'pl_test_priority_lanes_0123456789';
const BACKLOG = 3000;
const BATCH = 500;
const silent = pino({ level: process.env.LOG_LEVEL ?? 'silent' });

let broker: TestBroker;
let sink: SmtpSink;
let config: PostlineConfig;
let ingest: IngestHandle;
let renderer: RunningRenderer | undefined;
let dispatcher: RunningDispatcher | undefined;
let reader: TopicReader;

before(async () => {
  broker = await startTestBroker();
  sink = await startSmtpSink({ greetingDelay: false });
  config = loadPostlineConfig({
    env: {},
    overrides: {
      'log.level': 'silent',
      'kafka.brokers': [broker.bootstrap],
      // One partition per topic: every bulk record is in front of whatever comes later on a shared lane.
      'kafka.partitions': 1,
      'ops.host': '127.0.0.1',
      'ops.port': 0,
      'ingest.host': '127.0.0.1',
      'ingest.port': 0,
      'ingest.apiKeys': [{ tenant: 'acme', keyHash: hashApiKey(KEY) }],
      'ingest.rateLimitMax': 0,
      // A slow renderer lane, so the backlog lasts: the order below does not depend on speed.
      'renderer.concurrency': 2,
      'dispatcher.relay.host': sink.host,
      'dispatcher.relay.port': sink.port,
      'dispatcher.fetchMaxWaitMs': 100,
    },
  });
  ingest = await startIngest(config, { logger: silent, listen: false });
  reader = await new TopicReader(broker.bootstrap, [Topics.dispatch('bulk')]).start();
});

after(async () => {
  await reader?.stop();
  await dispatcher?.close();
  await renderer?.close();
  await ingest?.close();
  await sink?.close();
  await broker?.destroy();
});

async function post(url: string, payload: unknown): Promise<Record<string, any>> {
  const res = await ingest.app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, payload: payload as object });
  assert.equal(res.statusCode, 202, res.body);
  return res.json();
}

test('a critical message posted after a bulk backlog is delivered before the backlog is rendered', async (t) => {
  const run = uniqueName('lanes');
  for (let b = 0; b < BACKLOG / BATCH; b++) {
    const messages = Array.from({ length: BATCH }, (_, i) => ({
      from: 'news@shop.example',
      to: [`reader${b * BATCH + i}@bulk${i % 20}.example`],
      subject: `${run} newsletter`,
      html: '<p>This week in the shop.</p>',
      priority: 'bulk',
    }));
    const body = await post('/v1/emails/batch', { messages });
    assert.equal(body.results.filter((r: { id?: string }) => r.id).length, BATCH, 'every bulk message accepted');
  }
  // The backlog is queued before any renderer runs; the dispatcher is ready first (its start-up
  // does not count), then the renderer starts and the critical message follows.
  dispatcher = await startDispatcher(config, { logger: silent, ops: false });
  renderer = await startRenderer(config, { logger: silent, groupId: uniqueName('renderer'), ops: false });
  await post('/v1/emails', { from: 'alerts@shop.example', to: ['oncall@pager.example'], subject: `${run} password reset`, text: 'Your code: 123456', priority: 'critical' });

  await waitFor(() => sink.messages.some((m) => m.to.includes('oncall@pager.example')), 60_000, 'the critical message at the relay');
  const bulkRendered = reader.records.length;
  t.diagnostic(`bulk messages rendered when the critical one reached the relay: ${bulkRendered} of ${BACKLOG}`);
  assert.ok(bulkRendered < BACKLOG / 2, `the critical message waited for ${bulkRendered} of ${BACKLOG} bulk messages to be rendered`);
  // The backlog is not lost or skipped: it keeps draining behind it.
  await waitFor(() => reader.records.length > bulkRendered, 30_000, 'the bulk lane still rendering');
});
