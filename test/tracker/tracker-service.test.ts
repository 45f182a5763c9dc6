/**
 * `postline tracker` on the embedded broker, over real HTTP: signed opens and clicks become
 * events on `email.events`; with the broker stopped, redirects and pixels still answer at once,
 * events beyond the bounded queue are dropped and counted, and the ones held are produced once
 * the broker is back.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Registry } from 'prom-client';
import { loadPostlineConfig } from '../../shared/config.js';
import { createRegistry } from '../../shared/metrics.js';
import { Topics } from '../../shared/topics.js';
import { FeedbackKeyring } from '../../shared/feedback/feedback-token.js';
import type { EmailEvent } from '../../shared/contracts/email-event.js';
import { clickUrl, pixelUrl } from '../../shared/tracking/tracking-links.js';
import { startTracker, type TrackerHandle } from '../../services/tracker/main.js';
import { startTestBroker, uniqueName, waitFor, type TestBroker } from '../helpers/broker.js';
import { TopicReader } from '../helpers/topic-reader.js';
import { counter } from '../inbound/inbound-harness.js';

const KEYS = [{ id: 5, secret: 'tracker-service-test-secret-0123456789' }];
const keyring = new FeedbackKeyring(KEYS);
const CHROME = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
const issuedAt = Math.floor(Date.now() / 1000) - 3600;

let broker: TestBroker;
let reader: TopicReader;
let tracker: TrackerHandle;
let registry: Registry;

before(async () => {
  broker = await startTestBroker();
  registry = createRegistry('tracker');
  const config = loadPostlineConfig({
    env: {},
    overrides: {
      'log.level': 'silent',
      'kafka.brokers': [broker.bootstrap],
      'kafka.partitions': 1,
      'ops.host': '127.0.0.1',
      'ops.port': 0,
      'ops.shutdownGraceMs': 5000,
      'feedback.keys': KEYS,
      'tracking.host': '127.0.0.1',
      'tracking.port': 0,
      'tracking.queueMax': 4,
      'tracking.publishConcurrency': 2,
    },
  });
  tracker = await startTracker(config, { registry, retryDelayMs: 200 });
  reader = await new TopicReader(broker.bootstrap, [Topics.events]).start();
});

after(async () => {
  await tracker?.close();
  await reader?.stop();
  await broker?.destroy();
});

const events = (messageId: string) => reader.json<EmailEvent>(Topics.events).filter((e) => e.messageId === messageId);
const local = (url: string) => url.replace('http://t.test', tracker.address);
const get = (url: string) => fetch(local(url), { redirect: 'manual', headers: { 'user-agent': CHROME } });

describe('tracker service', () => {
  test('a click answers 302 and an open the pixel; both become events on email.events', async () => {
    const messageId = uniqueName('msg');
    const copy = { messageId, tenant: 'acme/eu', recipient: 'jane@example.org', issuedAt };
    const click = await get(clickUrl(keyring, 'http://t.test', copy, 0, 'https://shop.example/x'));
    assert.equal(click.status, 302);
    assert.equal(click.headers.get('location'), 'https://shop.example/x');
    const open = await get(pixelUrl(keyring, 'http://t.test', copy));
    assert.equal(open.status, 200);
    assert.equal((await open.arrayBuffer()).byteLength, 43);
    const got = await waitFor(() => (events(messageId).length >= 2 ? events(messageId) : undefined), 20_000, 'two events');
    const byType = Object.fromEntries(got.map((e) => [e.type, e]));
    assert.equal(byType.clicked.stage, 'tracker');
    assert.equal(byType.clicked.tenant, 'acme/eu');
    assert.deepEqual(byType.clicked.recipients, ['jane@example.org']);
    assert.deepEqual(byType.clicked.engagement, { first: true, machine: false, linkIndex: 0, url: 'https://shop.example/x', ip: '127.0.0.0', userAgent: CHROME });
    assert.equal(byType.opened.engagement?.first, true);
  });

  test('broker stopped: redirects still answer 302 at once; the overflow is dropped and counted; what was held arrives after the restart', async () => {
    const messageId = uniqueName('outage');
    await broker.close();
    const started = performance.now();
    for (let i = 0; i < 8; i++) {
      const res = await get(clickUrl(keyring, 'http://t.test', { messageId, tenant: 'acme', recipient: `r${i}@example.org`, issuedAt }, 0, `https://shop.example/${i}`));
      assert.equal(res.status, 302);
    }
    const ms = performance.now() - started;
    assert.ok(ms < 2000, `8 redirects took ${ms} ms with the broker down`);
    // queueMax 4: at least 4 of the 8 events had no room.
    assert.ok((await counter(registry, 'postline_tracker_events_dropped_total', { reason: 'full' })) >= 4);
    broker = await startTestBroker({ port: broker.port, dataDir: broker.dataDir });
    const got = await waitFor(() => (events(messageId).length >= 4 ? events(messageId) : undefined), 60_000, 'the held events after the restart');
    assert.ok(got.every((e) => e.type === 'clicked'));
    assert.equal(await tracker.buffer.drain(10_000), true);
  });
});
