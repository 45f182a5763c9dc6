import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka, logLevel } from 'kafkajs';
import pino from 'pino';
import { startTestBroker, waitFor, type TestBroker } from '../helpers/broker.js';
import { TopicReader } from '../helpers/topic-reader.js';
import { loadPostlineConfig } from '../../shared/config.js';
import { Topics } from '../../shared/topics.js';
import { EmailReadyForDispatchContract, type EmailReadyForDispatch } from '../../shared/contracts/email-ready-for-dispatch.js';
import { startScheduler } from '../../services/scheduler/main.js';

let broker: TestBroker;
let kafka: Kafka;

before(async () => {
  broker = await startTestBroker();
  kafka = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
});
after(async () => {
  await broker.destroy();
});

function retryRecord(id: string, notBefore: number, priority: EmailReadyForDispatch['priority'] = 'critical'): EmailReadyForDispatch {
  return {
    schemaVersion: 1,
    messageId: id,
    tenant: 'acme',
    priority,
    domain: 'example.org',
    envelope: { from: 'a@acme.test', to: ['b@example.org'] },
    raw: 'Subject: hi\r\n\r\nhello\r\n',
    acceptedAt: new Date(notBefore - 1000).toISOString(),
    attempt: 2,
    firstAttemptAt: new Date(notBefore - 1000).toISOString(),
    notBefore: new Date(notBefore).toISOString(),
    lastReason: '451 4.7.1 try later',
  };
}

test('holds retry records until due, moves them back to their dispatch topic in order, dead-letters garbage', async () => {
  const config = loadPostlineConfig({ env: {}, overrides: { 'kafka.brokers': [broker.bootstrap], 'kafka.partitions': 1, 'log.level': 'silent' } });
  const scheduler = await startScheduler(config, { logger: pino({ level: 'silent' }), ops: false });
  const reader = await new TopicReader(broker.bootstrap, [Topics.dispatch('critical'), Topics.dead]).start();
  const producer = kafka.producer();
  await producer.connect();
  try {
    const now = Date.now();
    const dueAt = [now - 1000, now + 800, now + 1500];
    await producer.send({
      topic: Topics.retry('1m'),
      messages: [
        ...dueAt.map((t, i) => ({ key: 'example.org', value: EmailReadyForDispatchContract.encode(retryRecord(`m${i}`, t)) })),
        { key: 'example.org', value: Buffer.from('{"not":"a dispatch record"}') },
      ],
    });
    const moved = await waitFor(() => {
      const got = reader.records.filter((r) => r.topic === Topics.dispatch('critical'));
      return got.length === 3 ? got : undefined;
    }, 15_000, 'three records back on email.dispatch.critical');
    const ids = moved.map((r) => (JSON.parse(r.message.value!.toString()) as EmailReadyForDispatch).messageId);
    assert.deepEqual(ids, ['m0', 'm1', 'm2']);
    // None arrived before it was due (allow for clock granularity only).
    moved.forEach((r, i) => assert.ok(r.receivedAt >= dueAt[i] - 20, `m${i} moved ${dueAt[i] - r.receivedAt} ms early`));
    const dead = await waitFor(() => reader.json<{ code: string; source: { topic: string } }>(Topics.dead)[0], 10_000, 'dead letter');
    assert.equal(dead.code, 'VALIDATION_FAILED');
    assert.equal(dead.source.topic, Topics.retry('1m'));
  } finally {
    await producer.disconnect();
    await reader.stop();
    await scheduler.close();
  }
});

test('a restarted scheduler resumes from its committed offset and moves nothing twice', async () => {
  const config = loadPostlineConfig({ env: {}, overrides: { 'kafka.brokers': [broker.bootstrap], 'kafka.partitions': 1, 'log.level': 'silent' } });
  const reader = await new TopicReader(broker.bootstrap, [Topics.dispatch('critical')]).start();
  // The reader starts from the beginning: the first test's three records come first.
  const before = await waitFor(() => (reader.records.length >= 3 ? reader.records.length : 0), 10_000, 'earlier records');
  const producer = kafka.producer();
  await producer.connect();
  const scheduler1 = await startScheduler(config, { logger: pino({ level: 'silent' }), ops: false });
  try {
    await producer.send({ topic: Topics.retry('5m'), messages: [{ key: 'example.org', value: EmailReadyForDispatchContract.encode(retryRecord('r1', Date.now() + 1500)) }] });
    // Stop while the record is held (it is due in 1.5 s), start again: it must still be moved, exactly once.
    await new Promise((r) => setTimeout(r, 300));
    await scheduler1.close();
    const scheduler2 = await startScheduler(config, { logger: pino({ level: 'silent' }), ops: false });
    try {
      await waitFor(() => reader.json<EmailReadyForDispatch>(Topics.dispatch('critical')).some((r) => r.messageId === 'r1'), 15_000, 'r1 moved');
      // A duplicate would follow within a fetch cycle; give it one before counting.
      await new Promise((r) => setTimeout(r, 500));
      const r1 = reader.json<EmailReadyForDispatch>(Topics.dispatch('critical')).filter((r) => r.messageId === 'r1');
      assert.equal(r1.length, 1);
      assert.equal(reader.records.length, before + 1);
    } finally {
      await scheduler2.close();
    }
  } finally {
    await producer.disconnect();
    await reader.stop();
  }
});

test('each priority’s tiers are held in their own lane and go back to that priority’s dispatch topic', async () => {
  const config = loadPostlineConfig({ env: {}, overrides: { 'kafka.brokers': [broker.bootstrap], 'kafka.partitions': 1, 'log.level': 'silent' } });
  const reader = await new TopicReader(broker.bootstrap, [Topics.dispatch('critical'), Topics.dispatch('bulk'), Topics.dispatch('transactional')]).start();
  const producer = kafka.producer();
  await producer.connect();
  const scheduler = await startScheduler(config, { logger: pino({ level: 'silent' }), ops: false, groupId: 'lanes-scheduler' });
  try {
    const now = Date.now();
    const bulkDue = now + 3000;
    await producer.send({ topic: Topics.retryFor('bulk', '1m'), messages: [{ key: 'example.org', value: EmailReadyForDispatchContract.encode(retryRecord('bulk-held', bulkDue, 'bulk')) }] });
    await producer.send({ topic: Topics.retryFor('critical', '1m'), messages: [{ key: 'example.org', value: EmailReadyForDispatchContract.encode(retryRecord('critical-due', now - 10)) }] });
    await producer.send({ topic: Topics.retryFor('transactional', '15m'), messages: [{ key: 'example.org', value: EmailReadyForDispatchContract.encode(retryRecord('tx-due', now - 10, 'transactional')) }] });
    const ids = (p: 'critical' | 'bulk' | 'transactional') => reader.json<EmailReadyForDispatch>(Topics.dispatch(p)).map((r) => r.messageId);
    await waitFor(() => ids('critical').includes('critical-due'), 10_000, 'the critical retry moved');
    await waitFor(() => ids('transactional').includes('tx-due'), 10_000, 'the transactional retry moved');
    await waitFor(() => ids('bulk').includes('bulk-held'), 15_000, 'the bulk retry moved once due');
    const at = (id: string) => reader.records.find((r) => r.message.value!.toString().includes(`"${id}"`))!.receivedAt;
    assert.ok(at('bulk-held') >= bulkDue - 20, 'the bulk retry was not moved before it was due');
    assert.ok(at('critical-due') < at('bulk-held'), 'the held bulk retry did not hold the critical one');
  } finally {
    await producer.disconnect();
    await reader.stop();
    await scheduler.close();
  }
});

test('a record goes back to its dispatch topic with the key it was dispatched with (a site key), else its domain', async () => {
  const config = loadPostlineConfig({ env: {}, overrides: { 'kafka.brokers': [broker.bootstrap], 'kafka.partitions': 1, 'log.level': 'silent' } });
  const reader = await new TopicReader(broker.bootstrap, [Topics.dispatch('bulk')]).start();
  const producer = kafka.producer();
  await producer.connect();
  const scheduler = await startScheduler(config, { logger: pino({ level: 'silent' }), ops: false, groupId: 'keys-scheduler' });
  try {
    const due = Date.now() - 10;
    await producer.send({
      topic: Topics.retryFor('bulk', '5m'),
      messages: [
        { key: 'gmail#2', value: EmailReadyForDispatchContract.encode(retryRecord('site-keyed', due, 'bulk')) },
        { key: null, value: EmailReadyForDispatchContract.encode(retryRecord('unkeyed', due, 'bulk')) },
      ],
    });
    const keyOf = (id: string) => reader.records.find((r) => r.message.value && (JSON.parse(r.message.value.toString()) as EmailReadyForDispatch).messageId === id)?.message.key?.toString();
    await waitFor(() => keyOf('site-keyed') && keyOf('unkeyed'), 15_000, 'both records moved');
    assert.equal(keyOf('site-keyed'), 'gmail#2');
    assert.equal(keyOf('unkeyed'), 'example.org');
  } finally {
    await producer.disconnect();
    await reader.stop();
    await scheduler.close();
  }
});

test('a cancelled message’s pending retry is dropped with a cancelled event instead of going back to dispatch; another tenant’s cancellation does nothing', async () => {
  const config = loadPostlineConfig({ env: {}, overrides: { 'kafka.brokers': [broker.bootstrap], 'kafka.partitions': 1, 'log.level': 'silent', 'schedule.port': 0, 'schedule.host': '127.0.0.1' } });
  const reader = await new TopicReader(broker.bootstrap, [Topics.dispatch('transactional'), Topics.events]).start();
  const producer = kafka.producer();
  await producer.connect();
  const scheduler = await startScheduler(config, { logger: pino({ level: 'silent' }), ops: false, groupId: 'cancel-scheduler' });
  const record = (id: string, tenant: string) => ({ ...retryRecord(id, Date.now() + 1500, 'transactional'), tenant });
  try {
    const put = (id: string, tenant: string) => fetch(`${scheduler.cancelAddress}/internal/v1/cancellations/${id}`, { method: 'PUT', headers: { 'x-postline-tenant': tenant } });
    assert.equal((await put('retry-eu', 'acme/eu')).status, 202);
    // acme asks to cancel acme/eu's other message: recorded under acme, it must not touch it.
    assert.equal((await put('retry-kept', 'acme')).status, 202);
    await producer.send({
      topic: Topics.retryFor('transactional', '5m'),
      messages: [
        { key: 'example.org', value: EmailReadyForDispatchContract.encode(record('retry-eu', 'acme/eu')) },
        { key: 'example.org', value: EmailReadyForDispatchContract.encode(record('retry-kept', 'acme/eu')) },
      ],
    });
    const moved = () => reader.json<EmailReadyForDispatch>(Topics.dispatch('transactional')).map((r) => r.messageId);
    await waitFor(() => moved().includes('retry-kept'), 15_000, 'the other retry moved');
    // The event and the moved record are produced together: either may be read first.
    const cancelled = await waitFor(() => {
      const got = reader.json<{ type: string; messageId: string; tenant: string }>(Topics.events).filter((e) => e.type === 'cancelled');
      return got.length > 0 ? got : undefined;
    }, 10_000, 'the cancelled event');
    assert.deepEqual(cancelled.map((e) => [e.messageId, e.tenant]), [['retry-eu', 'acme/eu']]);
    assert.equal(moved().includes('retry-eu'), false);
  } finally {
    await producer.disconnect();
    await reader.stop();
    await scheduler.close();
  }
});
