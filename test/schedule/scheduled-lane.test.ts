import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka, logLevel } from 'kafkajs';
import pino from 'pino';
import { startTestBroker, waitFor, type TestBroker } from '../helpers/broker.js';
import { TopicReader } from '../helpers/topic-reader.js';
import { loadPostlineConfig, type PostlineConfig } from '../../shared/config.js';
import { Topics } from '../../shared/topics.js';
import { EmailRequestedContract, type EmailRequested } from '../../shared/contracts/email-requested.js';
import type { EmailEvent } from '../../shared/contracts/email-event.js';
import { startScheduler } from '../../services/scheduler/main.js';
import { TENANT_HEADER } from '../../services/scheduler/cancel-api.js';
import { scheduledRequest } from './scheduled-requests.js';

let broker: TestBroker;
let kafka: Kafka;

before(async () => {
  broker = await startTestBroker();
  kafka = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
});
after(async () => {
  await broker.destroy();
});

const config = (group: string): PostlineConfig =>
  loadPostlineConfig({
    env: {},
    overrides: { 'kafka.brokers': [broker.bootstrap], 'kafka.partitions': 2, 'log.level': 'silent', 'schedule.port': 0, 'schedule.host': '127.0.0.1', 'schedule.horizonMs': 1000, 'schedule.groupId': group },
  });

async function produceScheduled(records: EmailRequested[]): Promise<void> {
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic: Topics.scheduled, messages: records.map((r) => ({ key: r.messageId, value: EmailRequestedContract.encode(r) })) });
  await producer.disconnect();
}

const released = (reader: TopicReader, id: string) => reader.records.filter((r) => r.topic === Topics.requestedFor('transactional') && r.message.key?.toString() === id);

test('releases each scheduled request to its request lane at its sendAt (bodies beyond the horizon re-read), never before', async () => {
  const scheduler = await startScheduler(config('lane-a'), { logger: pino({ level: 'silent' }), ops: false });
  const reader = await new TopicReader(broker.bootstrap, [Topics.requestedFor('transactional')]).start();
  try {
    const now = Date.now();
    // s-far is 3.5 s ahead, beyond the 1 s horizon: held without its body, re-read when it comes due.
    const due = { 's-past': now - 5000, 's-near': now + 1500, 's-far': now + 3500 };
    await produceScheduled(Object.entries(due).map(([id, at]) => scheduledRequest(id, at)));
    await waitFor(() => scheduler.scheduled.book.size === 2 && released(reader, 's-past').length === 1, 15_000, 'the past one released, two held');
    // Both are beyond the 1 s horizon when read: no body held yet.
    assert.equal(scheduler.scheduled.book.bodyBytes, 0);
    for (const id of ['s-near', 's-far'] as const) {
      const [r] = await waitFor(() => (released(reader, id).length ? released(reader, id) : undefined), 20_000, `${id} released`);
      assert.ok(r.receivedAt >= due[id], `${id} released ${due[id] - r.receivedAt} ms early`);
      assert.ok(r.receivedAt - due[id] < 1000, `${id} released ${r.receivedAt - due[id]} ms late`);
      const body = EmailRequestedContract.decode(r.message.value);
      assert.equal(body.messageId, id);
      assert.equal(r.message.headers?.['postline-released']?.toString(), '1');
    }
    // Forgotten once its released marker is written (just after the release is acknowledged).
    await waitFor(() => scheduler.scheduled.book.size === 0, 5000, 'the book empty');
  } finally {
    await reader.stop();
    await scheduler.close();
  }
});

test('a restart releases what was pending and nothing that was already released', async () => {
  const group = 'lane-restart';
  const reader = await new TopicReader(broker.bootstrap, [Topics.requestedFor('transactional')]).start();
  const scheduler1 = await startScheduler(config(group), { logger: pino({ level: 'silent' }), ops: false });
  try {
    const now = Date.now();
    // r-held is first in the log and due last: the committed offset cannot pass it, so r-early is read again after the restart.
    await produceScheduled([scheduledRequest('r-held', now + 4000), scheduledRequest('r-early', now + 300)]);
    await waitFor(() => released(reader, 'r-early').length === 1, 15_000, 'r-early released before the restart');
    await waitFor(() => scheduler1.scheduled.book.size === 1, 5000, 'r-held waiting');
    await scheduler1.close();
    const scheduler2 = await startScheduler(config(group), { logger: pino({ level: 'silent' }), ops: false });
    try {
      await waitFor(() => released(reader, 'r-held').length === 1, 20_000, 'r-held released after the restart');
      // A duplicate of r-early would come with the first fetch after the restart, long before r-held's release.
      assert.equal(released(reader, 'r-early').length, 1);
      assert.equal(released(reader, 'r-held').length, 1);
    } finally {
      await scheduler2.close();
    }
  } finally {
    await reader.stop();
  }
});

test('cancellation: 200 for a pending message (never released, cancelled event), 404 for another tenant (acme vs acme/eu), 409 once released', async () => {
  const scheduler = await startScheduler(config('lane-cancel'), { logger: pino({ level: 'silent' }), ops: false });
  const reader = await new TopicReader(broker.bootstrap, [Topics.requestedFor('transactional'), Topics.events]).start();
  const cancel = (id: string, tenant: string) => fetch(`${scheduler.cancelAddress}/internal/v1/scheduled/${id}`, { method: 'DELETE', headers: { [TENANT_HEADER]: tenant } });
  try {
    const now = Date.now();
    await produceScheduled([scheduledRequest('c-eu', now + 2500, 'acme/eu'), scheduledRequest('c-soon', now + 800, 'acme/eu')]);
    await waitFor(() => scheduler.scheduled.book.size === 2, 10_000, 'both scheduled');
    const other = await cancel('c-eu', 'acme');
    assert.equal(other.status, 404, 'acme cannot cancel acme/eu’s message');
    const ok = await cancel('c-eu', 'acme/eu');
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), { id: 'c-eu', status: 'cancelled', cancelled: ['scheduled'] });
    await waitFor(() => released(reader, 'c-soon').length === 1, 10_000, 'c-soon released');
    const late = await cancel('c-soon', 'acme/eu');
    assert.equal(late.status, 409);
    assert.equal(((await late.json()) as { error: { code: string } }).error.code, 'TOO_LATE');
    const events = () => reader.json<EmailEvent>(Topics.events).filter((e) => e.type === 'cancelled');
    await waitFor(() => events().some((e) => e.messageId === 'c-eu'), 5000, 'cancelled event');
    // Past c-eu's sendAt: it must never be released.
    await waitFor(() => Date.now() > now + 3500, 5000, 'past c-eu’s sendAt');
    assert.equal(released(reader, 'c-eu').length, 0);
    assert.equal(events().filter((e) => e.messageId === 'c-eu').length, 1);
    assert.equal(events().some((e) => e.messageId === 'c-soon'), false);
  } finally {
    await reader.stop();
    await scheduler.close();
  }
});
