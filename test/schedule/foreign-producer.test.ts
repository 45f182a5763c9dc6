/**
 * A foreign producer's request with a future sendAt on email.requested: the renderer parks it on
 * email.scheduled, the scheduler releases it when due, and only then is it rendered and dispatched.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka, logLevel } from 'kafkajs';
import pino from 'pino';
import { startTestBroker, waitFor, type TestBroker } from '../helpers/broker.js';
import { TopicReader } from '../helpers/topic-reader.js';
import { loadPostlineConfig } from '../../shared/config.js';
import { Topics } from '../../shared/topics.js';
import { EmailRequestedContract } from '../../shared/contracts/email-requested.js';
import type { EmailReadyForDispatch } from '../../shared/contracts/email-ready-for-dispatch.js';
import type { EmailEvent } from '../../shared/contracts/email-event.js';
import type { DeadLetter } from '../../shared/contracts/dead-letter.js';
import { startScheduler } from '../../services/scheduler/main.js';
import { startRenderer } from '../../services/renderer/main.js';
import { scheduledRequest } from './scheduled-requests.js';

let broker: TestBroker;
before(async () => {
  broker = await startTestBroker();
});
after(async () => {
  await broker.destroy();
});

test('a future sendAt produced straight to email.requested is parked, released when due, then rendered; one past 30 days is dead-lettered', async () => {
  const config = loadPostlineConfig({ env: {}, overrides: { 'kafka.brokers': [broker.bootstrap], 'kafka.partitions': 1, 'log.level': 'silent', 'schedule.port': 0, 'schedule.host': '127.0.0.1' } });
  const logger = pino({ level: 'silent' });
  const renderer = await startRenderer(config, { logger, ops: false });
  const scheduler = await startScheduler(config, { logger, ops: false });
  const reader = await new TopicReader(broker.bootstrap, [Topics.scheduled, Topics.dispatch('transactional'), Topics.events, Topics.dead]).start();
  const kafka = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
  const producer = kafka.producer();
  await producer.connect();
  try {
    const sendAt = Date.now() + 2500;
    const later = { ...scheduledRequest('foreign-later', sendAt), acceptedAt: new Date().toISOString() };
    const tooFar = scheduledRequest('foreign-too-far', Date.now() + 40 * 86_400_000);
    await producer.send({ topic: Topics.requested, messages: [later, tooFar].map((r) => ({ key: r.messageId, value: EmailRequestedContract.encode(r) })) });
    await waitFor(() => reader.records.some((r) => r.topic === Topics.scheduled && r.message.key?.toString() === 'foreign-later'), 15_000, 'parked on email.scheduled');
    const scheduled = await waitFor(() => reader.json<EmailEvent>(Topics.events).find((e) => e.messageId === 'foreign-later' && e.type === 'scheduled'), 10_000, 'scheduled event');
    assert.equal(scheduled.nextAttemptAt, new Date(sendAt).toISOString());
    const dead = await waitFor(() => reader.json<DeadLetter>(Topics.dead).find((d) => d.messageId === 'foreign-too-far'), 10_000, 'too far dead-lettered');
    assert.equal(dead.code, 'SEND_AT_TOO_FAR');
    const dispatched = await waitFor(() => reader.records.find((r) => r.topic === Topics.dispatch('transactional') && (JSON.parse(r.message.value!.toString()) as EmailReadyForDispatch).messageId === 'foreign-later'), 20_000, 'rendered after release');
    assert.ok(dispatched.receivedAt >= sendAt, `rendered ${sendAt - dispatched.receivedAt} ms before its sendAt`);
    // Parked once, never parked again after its release.
    assert.equal(reader.records.filter((r) => r.topic === Topics.scheduled && r.message.key?.toString() === 'foreign-later').length, 1);
  } finally {
    await producer.disconnect();
    await reader.stop();
    await scheduler.close();
    await renderer.close();
  }
});
