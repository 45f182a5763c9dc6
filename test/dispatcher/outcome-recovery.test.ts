/**
 * The dispatch handler when recording an outcome fails (the broker went away after the relay
 * said 250): the record is retried by the consumer, and the retry records the remembered verdict
 * instead of sending the message again. Real SMTP sink, a producer that fails on demand.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import type { Message } from 'kafkajs';
import { loadPostlineConfig } from '../../shared/config.js';
import { EventPublisher } from '../../shared/events.js';
import { retryPolicy } from '../../shared/retry-policy.js';
import { EmailEventContract, type EmailEvent } from '../../shared/contracts/email-event.js';
import { EmailReadyForDispatchContract } from '../../shared/contracts/email-ready-for-dispatch.js';
import { Topics } from '../../shared/topics.js';
import type { BatchingProducer } from '../../shared/kafka/batching-producer.js';
import type { StageRecord } from '../../shared/kafka/stage-consumer.js';
import { DispatchHandler } from '../../services/dispatcher/dispatch-handler.js';
import { DeliveryLedger } from '../../services/dispatcher/delivery-ledger.js';
import type { PendingOutcome } from '../../services/dispatcher/outcome-writer.js';
import { startSmtpSink, type SmtpSinkOptions } from '../helpers/smtp-sink.js';
import { fleetsWith, recordFor, routeOf } from './fleet-support.js';

const cleanup: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

/** A producer whose sends to `failTopic` fail while `failing` is set; everything else is "acked". */
function flakyProducer() {
  const written: Array<{ topic: string; message: Message }> = [];
  const state = { failing: new Set<string>() };
  const producer = {
    async send(topic: string, message: Message) {
      if (state.failing.has(topic)) throw new Error(`broker unavailable (${topic})`);
      written.push({ topic, message });
      return { topic, partition: 0, offset: String(written.length - 1) };
    },
  } as unknown as BatchingProducer;
  return { producer, written, state };
}

async function setup(script: SmtpSinkOptions['script']) {
  const sink = await startSmtpSink({ greetingDelay: false, script });
  cleanup.push(() => sink.close());
  const fleets = fleetsWith();
  cleanup.push(() => fleets.close());
  const { producer, written, state } = flakyProducer();
  const config = loadPostlineConfig({ env: {}, overrides: { 'retry.delay1mMs': 1000 } });
  const handler = new DispatchHandler({
    events: new EventPublisher(producer, 'dispatcher'),
    producer,
    fleets,
    routing: { relay: routeOf(sink.port) },
    retryPolicy: retryPolicy(config.retry),
    logger: pino({ level: 'silent' }),
    ledger: new DeliveryLedger<PendingOutcome>(1000),
  });
  const events = (): EmailEvent[] => written.filter((w) => w.topic === Topics.events).map((w) => EmailEventContract.decode(w.message.value as Buffer));
  return { sink, handler, written, state, events };
}

function stageRecord(value: Buffer, offset = '0'): StageRecord {
  return { topic: Topics.dispatch('transactional'), partition: 0, message: { key: Buffer.from('example.org'), value, offset, timestamp: String(Date.now()), attributes: 0, headers: {} } };
}

test('a 250 whose sent event could not be written is recorded on the retry, not sent again', async () => {
  const h = await setup(() => 250);
  const record = recordFor(['ann@example.org', 'bob@example.org']);
  h.state.failing.add(Topics.events);
  await assert.rejects(h.handler.handle(stageRecord(EmailReadyForDispatchContract.encode(record))), /broker unavailable/);
  assert.equal(h.sink.messages.length, 1, 'the relay took it');
  assert.equal(h.events().length, 0);

  h.state.failing.clear();
  await h.handler.handle(stageRecord(EmailReadyForDispatchContract.encode(record)));
  assert.equal(h.sink.messages.length, 1, 'not sent a second time');
  const [sent] = h.events();
  assert.equal(sent.type, 'sent');
  assert.deepEqual(sent.recipients, record.envelope.to);
  assert.equal(sent.smtp?.code, 250);

  // A third copy (e.g. redelivered after the commit was lost) does nothing at all.
  await h.handler.handle(stageRecord(EmailReadyForDispatchContract.encode(record)));
  assert.equal(h.sink.messages.length, 1);
  assert.equal(h.events().length, 1);
});

test('a deferral whose retry record was written but whose event was not: the retry writes only the event, with the same plan', async () => {
  const h = await setup(() => 451);
  const record = recordFor(['later@example.org']);
  h.state.failing.add(Topics.events);
  await assert.rejects(h.handler.handle(stageRecord(EmailReadyForDispatchContract.encode(record))));
  const retries = (): number => h.written.filter((w) => w.topic === Topics.retryFor(record.priority, '1m')).length;
  assert.equal(retries(), 1, 'the retry record is written first');

  h.state.failing.clear();
  await h.handler.handle(stageRecord(EmailReadyForDispatchContract.encode(record)));
  assert.equal(retries(), 1, 'no second retry record (that would be a second delivery later)');
  assert.equal(h.sink.rcptAttempts.get('later@example.org'), 1, 'not tried again now');
  const [deferred] = h.events();
  assert.equal(deferred.type, 'deferred');
  const retry = EmailReadyForDispatchContract.decode(h.written.find((w) => w.topic === Topics.retryFor(record.priority, '1m'))!.message.value as Buffer);
  assert.equal(deferred.nextAttemptAt, retry.notBefore, 'the event names the retry that was written');
});
