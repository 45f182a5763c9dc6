/**
 * The dispatch handler tells the process's record of urgent mail when a message is through, so
 * the API's batches stop giving way to it then (shared/urgent-mail.ts): after a 250, after a
 * refusal, and after an invalid record is dead-lettered it is no longer pending. Real SMTP sink.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import type { Message } from 'kafkajs';
import { loadPostlineConfig } from '../../shared/config.js';
import { EventPublisher } from '../../shared/events.js';
import { retryPolicy } from '../../shared/retry-policy.js';
import { EmailReadyForDispatchContract } from '../../shared/contracts/email-ready-for-dispatch.js';
import { Topics } from '../../shared/topics.js';
import { UrgentMail } from '../../shared/urgent-mail.js';
import type { BatchingProducer } from '../../shared/kafka/batching-producer.js';
import { DispatchHandler } from '../../services/dispatcher/dispatch-handler.js';
import { startSmtpSink } from '../helpers/smtp-sink.js';
import { fleetsWith, recordFor, routeOf } from './fleet-support.js';

const cleanup: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

test('a critical message stops counting as urgent once its dispatch record is handled, whatever the outcome', async () => {
  const sink = await startSmtpSink({ greetingDelay: false, script: (rcpt) => (rcpt.startsWith('refused') ? 550 : 250) });
  cleanup.push(() => sink.close());
  const fleets = fleetsWith();
  cleanup.push(() => fleets.close());
  const written: Array<{ topic: string; message: Message }> = [];
  const producer = { send: async (topic: string, message: Message) => void written.push({ topic, message }) } as unknown as BatchingProducer;
  const urgent = new UrgentMail();
  const handler = new DispatchHandler({
    events: new EventPublisher(producer, 'dispatcher'),
    producer,
    fleets,
    routing: { relay: routeOf(sink.port) },
    retryPolicy: retryPolicy(loadPostlineConfig({ env: {} }).retry),
    logger: pino({ level: 'silent' }),
    urgent,
  });
  const handle = (value: Buffer) => handler.handle({ topic: Topics.dispatch('critical'), partition: 0, message: { key: Buffer.from('example.org'), value, offset: '0', timestamp: String(Date.now()), attributes: 0, headers: {} } });

  for (const to of ['ann@example.org', 'refused@example.org']) {
    const record = recordFor([to], { priority: 'critical' });
    urgent.seen('critical', record.messageId);
    assert.equal(urgent.moreUrgentWithin('transactional', 60_000), true);
    await handle(EmailReadyForDispatchContract.encode(record));
    assert.equal(urgent.moreUrgentWithin('transactional', 60_000), false, `through after ${to}`);
  }
  assert.equal(sink.messages.length, 1, 'one delivered, one refused');

  // An undecodable record naming a message id: dead-lettered, and that message is through too.
  urgent.seen('critical', 'broken-1');
  await handle(Buffer.from(JSON.stringify({ messageId: 'broken-1', tenant: 'tenant-a', priority: 'critical' })));
  assert.ok(written.some((w) => w.topic === Topics.dead));
  assert.equal(urgent.moreUrgentWithin('transactional', 60_000), true, 'no id could be trusted from an invalid record: the window holds');
});
