/**
 * The dispatcher end to end through the embedded broker and scripted SMTP sinks: what arrives at
 * the relay, the events and retry records it leaves behind, and that nothing is lost or resent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Topics } from '../../shared/topics.js';
import { DeadLetterContract } from '../../shared/contracts/dead-letter.js';
import { waitFor } from '../helpers/broker.js';
import { startHarness } from './dispatcher-harness.js';
import { recordFor } from './fleet-support.js';

test('the exact raw MIME arrives byte for byte, with the envelope of the record, and a sent event', async (t) => {
  const h = await startHarness();
  t.after(() => h.close());
  const record = recordFor(['ann@example.org', 'bob@example.org']);
  // 8-bit UTF-8 body, a dot-stuffed line, a long line: all must arrive as rendered.
  record.raw = record.raw.replace('Hello', 'Grüße, Ünïcødé ✓\r\n.\r\n' + 'x'.repeat(2000) + '\r\nHello');
  await h.produce([record]);
  const [msg] = await h.sink.waitForMessages(1);
  assert.ok(msg.raw.equals(Buffer.from(record.raw, 'utf8')), 'raw bytes differ');
  assert.equal(msg.from, record.envelope.from);
  assert.deepEqual(msg.to, record.envelope.to);
  const [sent] = await h.waitForEvents(1, 'sent');
  assert.equal(sent.messageId, record.messageId);
  assert.equal(sent.tenant, record.tenant);
  assert.equal(sent.stage, 'dispatcher');
  assert.equal(sent.attempt, 1);
  assert.equal(sent.domain, 'example.org');
  assert.equal(sent.priority, 'transactional');
  assert.deepEqual(sent.recipients, record.envelope.to);
  assert.equal(sent.smtp?.code, 250);
  assert.equal(sent.smtp?.host, `127.0.0.1:${h.sink.port}`);
  assert.match(sent.smtp?.message ?? '', /queued/);
  assert.equal(typeof sent.latencyMs, 'number');
  assert.equal(typeof sent.connectionReused, 'boolean');
});

test('connections are reused: 200 messages over a handful of connections; metrics per host and priority', async (t) => {
  const h = await startHarness({}, { 'dispatcher.fleet.maxConnectionsPerHost': 4, 'dispatcher.fleet.reserveCritical': 1, 'dispatcher.fleet.reserveTransactional': 1 });
  t.after(() => h.close());
  const records = Array.from({ length: 200 }, (_, i) => recordFor([`user${i}@example.org`], { priority: i % 2 ? 'bulk' : 'transactional' }));
  await h.produce(records);
  await h.sink.waitForMessages(200, 30_000);
  const sent = await h.waitForEvents(200, 'sent');
  assert.deepEqual(new Set(sent.map((e) => e.messageId)), new Set(records.map((r) => r.messageId)));
  assert.ok(h.sink.connections <= 4, `${h.sink.connections} connections for 200 messages`);
  assert.ok(sent.filter((e) => e.connectionReused).length >= 195, 'most sends reused a connection');
  const metrics = await h.dispatcher.registry.metrics();
  const host = `127.0.0.1:${h.sink.port}`;
  const value = (name: string, ...labels: string[]): number => {
    const line = metrics.split('\n').find((l) => l.startsWith(`${name}{`) && labels.every((x) => l.includes(x)));
    return line ? Number(line.split(' ').at(-1)) : NaN;
  };
  assert.equal(value('postline_dispatch_outcomes_total', `host="${host}"`, 'priority="transactional"', 'outcome="sent"'), 100);
  assert.equal(value('postline_dispatch_outcomes_total', `host="${host}"`, 'priority="bulk"', 'outcome="sent"'), 100);
  assert.equal(value('postline_dispatch_messages_sent_total', 'priority="bulk"'), 100);
  assert.equal(value('postline_smtp_connections_opened_total', `host="${host}"`), h.sink.connections);
  const size = value('postline_smtp_fleet_connections', `host="${host}"`);
  assert.ok(size >= 1 && size <= 4, `fleet size gauge ${size}`);
  assert.equal(value('postline_smtp_fleet_busy_connections', `host="${host}"`), 0);
  assert.equal(value('postline_smtp_transaction_seconds_count', `host="${host}"`, 'outcome="sent"'), 200);
});

test('550 gives a bounced event with code, enhanced code and text, and is never resent', async (t) => {
  const h = await startHarness({ script: (rcpt) => (rcpt.startsWith('nobody') ? { code: 550, message: '5.1.1 No such user here' } : 250) });
  t.after(() => h.close());
  const record = recordFor(['nobody@example.org']);
  await h.produce([record]);
  const [bounced] = await h.waitForEvents(1, 'bounced');
  assert.equal(bounced.messageId, record.messageId);
  assert.equal(bounced.smtp?.code, 550);
  assert.equal(bounced.smtp?.enhanced, '5.1.1');
  assert.match(bounced.smtp?.message ?? '', /No such user here/);
  assert.deepEqual(bounced.recipients, ['nobody@example.org']);
  // The outcome was committed with the offset: a restarted dispatcher does not send it again.
  await h.restart();
  const later = recordFor(['fine@example.org']);
  await h.produce([later]);
  await h.sink.waitForMessages(1);
  assert.equal(h.sink.rcptAttempts.get('nobody@example.org'), 1);
  assert.equal(h.retries().length, 0);
  assert.equal(h.events('bounced').length, 1);
});

test('451 gives a deferred event and the record on email.retry.1m with attempt 2; mixed recipients split', async (t) => {
  const h = await startHarness(
    { script: (rcpt) => (rcpt.startsWith('later') ? { code: 451, message: '4.7.1 Greylisted, try again' } : rcpt.startsWith('gone') ? 550 : 250) },
    { 'retry.delay1mMs': 60_000 },
  );
  t.after(() => h.close());
  const record = recordFor(['now@example.org', 'later@example.org', 'gone@example.org'], { tags: ['welcome'] });
  const before = Date.now();
  await h.produce([record]);
  const [deferred] = await h.waitForEvents(1, 'deferred');
  const [retry] = await waitFor(() => (h.retries().length > 0 ? h.retries() : undefined), 10_000, 'retry record');
  assert.equal(retry.messageId, record.messageId);
  assert.equal(retry.attempt, 2);
  assert.deepEqual(retry.envelope.to, ['later@example.org']);
  assert.equal(retry.raw, record.raw);
  assert.ok(retry.firstAttemptAt && Date.parse(retry.firstAttemptAt) >= before - 1000);
  assert.match(retry.lastReason ?? '', /451.*Greylisted/);
  const notBefore = Date.parse(retry.notBefore ?? '');
  assert.ok(notBefore >= before + 59_000 && notBefore <= Date.now() + 61_000, `notBefore ${retry.notBefore}`);
  assert.deepEqual(deferred.recipients, ['later@example.org']);
  assert.equal(deferred.attempt, 1);
  assert.equal(deferred.nextAttemptAt, retry.notBefore);
  assert.equal(deferred.smtp?.code, 451);
  assert.match(deferred.reason ?? '', /SMTP_TRANSIENT: 451/);
  const [sent] = await h.waitForEvents(1, 'sent');
  assert.deepEqual(sent.recipients, ['now@example.org']);
  const [bounced] = await h.waitForEvents(1, 'bounced');
  assert.deepEqual(bounced.recipients, ['gone@example.org']);
  assert.deepEqual(h.sink.messages.map((m) => m.to), [['now@example.org']]);
});

test('a server dropping the connection mid-DATA: the message goes again on another connection and arrives once', async (t) => {
  const h = await startHarness({ script: (_rcpt, ctx) => (ctx.attempt === 1 ? 'drop-data' : 250) });
  t.after(() => h.close());
  const records = Array.from({ length: 5 }, (_, i) => recordFor([`r${i}@example.org`]));
  await h.produce(records);
  const sent = await h.waitForEvents(5, 'sent');
  assert.equal(new Set(sent.map((e) => e.messageId)).size, 5);
  await h.sink.waitForMessages(5);
  for (const r of records) assert.equal(h.sink.messagesTo(r.envelope.to[0]).length, 1, r.envelope.to[0]);
  assert.ok(h.sink.connections >= 6, 'broken connections were replaced');
  assert.equal(h.retries().length, 0);
});

test('a relay that never greets: deferred within the greeting timeout, record kept on email.retry.1m', async (t) => {
  const h = await startHarness({ connect: () => 'hang' }, { 'dispatcher.greetingTimeoutMs': 400, 'dispatcher.fleet.warmConnections': 0 });
  t.after(() => h.close());
  const record = recordFor(['r@example.org'], { priority: 'critical' });
  const started = Date.now();
  await h.produce([record]);
  const [deferred] = await h.waitForEvents(1, 'deferred');
  assert.ok(Date.now() - started < 5000);
  assert.match(deferred.reason ?? '', /SMTP_GREETING_TIMEOUT/);
  const [retry] = await waitFor(() => (h.retries().length > 0 ? h.retries() : undefined), 10_000, 'retry record');
  assert.equal(retry.messageId, record.messageId);
  assert.equal(retry.priority, 'critical');
  assert.equal(retry.attempt, 2);
});

test('an invalid record goes to email.dead with a failed event, and the stream goes on', async (t) => {
  const h = await startHarness();
  t.after(() => h.close());
  await h.producer.send({
    topic: Topics.dispatch('transactional'),
    messages: [{ key: 'example.org', value: JSON.stringify({ schemaVersion: 1, messageId: 'bad-1', tenant: 'tenant-a', envelope: { to: [] } }) }],
  });
  const good = recordFor(['after@example.org']);
  await h.produce([good]);
  await h.waitForEvents(1, 'sent');
  const [failed] = await h.waitForEvents(1, 'failed');
  assert.equal(failed.messageId, 'bad-1');
  assert.match(failed.reason ?? '', /VALIDATION_FAILED/);
  const dead = h.reader.records.filter((r) => r.topic === Topics.dead).map((r) => DeadLetterContract.decode(r.message.value));
  assert.equal(dead.length, 1);
  assert.equal(dead[0].code, 'VALIDATION_FAILED');
  assert.equal(dead[0].stage, 'dispatcher');
  assert.match(dead[0].reason, /priority|raw|envelope/);
  assert.equal(dead[0].source.topic, Topics.dispatch('transactional'));
  assert.equal(h.sink.messages.length, 1);
});

test('critical gets a connection while bulk saturates the fleet', async (t) => {
  const h = await startHarness(
    { script: (rcpt) => (rcpt.startsWith('bulk') ? { dataCode: 250, delayMs: 1000 } : 250) },
    { 'dispatcher.fleet.maxConnectionsPerHost': 3, 'dispatcher.fleet.reserveCritical': 1, 'dispatcher.fleet.reserveTransactional': 0, 'dispatcher.concurrencyBulk': 10 },
  );
  t.after(() => h.close());
  await h.produce(Array.from({ length: 6 }, (_, i) => recordFor([`bulk${i}@example.org`], { priority: 'bulk' })));
  await waitFor(() => h.dispatcher.fleets.stats()[0]?.busy === 2 && h.dispatcher.fleets.stats()[0].waiting > 0, 10_000, 'bulk holding its share');
  const started = Date.now();
  await h.produce([recordFor(['oncall@example.org'], { priority: 'critical' })]);
  await waitFor(() => h.sink.messagesTo('oncall@example.org').length === 1, 10_000, 'critical message');
  const elapsed = Date.now() - started;
  assert.ok(elapsed < 900, `critical took ${elapsed} ms`);
  assert.ok(h.sink.messages.filter((m) => m.to[0].startsWith('bulk')).length < 6, 'bulk backlog not drained yet');
  await h.waitForEvents(7, 'sent', 30_000);
});

test('concurrency bounds SMTP transactions per priority, not records awaiting their outcome', async (t) => {
  const h = await startHarness({ script: () => ({ dataCode: 250, delayMs: 150 }) }, { 'dispatcher.concurrencyTransactional': 2, 'dispatcher.fleet.maxConnectionsPerHost': 8 });
  t.after(() => h.close());
  let maxBusy = 0;
  const sampler = setInterval(() => (maxBusy = Math.max(maxBusy, h.dispatcher.fleets.stats()[0]?.busy ?? 0)), 5);
  t.after(() => clearInterval(sampler));
  await h.produce(Array.from({ length: 8 }, (_, i) => recordFor([`slot${i}@example.org`])));
  await h.waitForEvents(8, 'sent', 30_000);
  clearInterval(sampler);
  assert.equal(maxBusy, 2, `at most 2 connections sending at once (saw ${maxBusy})`);
});

// Fails until StageConsumer commits through the batch payload: kafkajs' consumer.commitOffsets()
// is a silent no-op once stop() has begun, so records finished during shutdown are sent again
// after a restart (see the dispatcher report).

test('shutdown finishes in-flight sends, records their outcome and says QUIT; a restart loses nothing and resends nothing', async (t) => {
  const h = await startHarness({ script: () => ({ dataCode: 250, delayMs: 300 }) }, { 'dispatcher.concurrencyTransactional': 4 });
  t.after(() => h.close());
  const records = Array.from({ length: 12 }, (_, i) => recordFor([`r${i}@example.org`]));
  await h.produce(records);
  await waitFor(() => (h.dispatcher.fleets.stats()[0]?.busy ?? 0) > 0, 10_000, 'sends in flight');
  assert.equal(await h.dispatcher.close(), true);
  const delivered = h.sink.messages.length;
  assert.ok(delivered > 0 && delivered < 12, `${delivered} delivered before shutdown`);
  await h.sink.waitForOpenAtMost(0, 5000);
  // Every message the relay took before shutdown has its sent event.
  await waitFor(() => h.events('sent').length >= delivered, 10_000, 'sent events of delivered messages');
  await h.restart();
  const sent = await h.waitForEvents(12, 'sent', 30_000);
  assert.deepEqual(new Set(sent.map((e) => e.messageId)), new Set(records.map((r) => r.messageId)));
  for (const r of records) assert.equal(h.sink.messagesTo(r.envelope.to[0]).length, 1, `${r.envelope.to[0]} delivered once`);
});

test('a second failure goes to the next tier (email.retry.5m); past the maximum age the message expires to email.dead', async (t) => {
  const h = await startHarness({ script: () => 451 }, { 'retry.delay5mMs': 300_000, 'retry.maxAgeCriticalMs': 3_600_000 });
  t.after(() => h.close());
  const second = recordFor(['again@example.org'], { attempt: 2, firstAttemptAt: new Date(Date.now() - 60_000).toISOString() });
  const old = recordFor(['late@example.org'], { priority: 'critical', acceptedAt: new Date(Date.now() - 2 * 3_600_000).toISOString(), attempt: 5 });
  await h.produce([second, old]);
  const [retry] = await waitFor(() => (h.retries('5m').length > 0 ? h.retries('5m') : undefined), 10_000, 'record on email.retry.5m');
  assert.equal(retry.messageId, second.messageId);
  assert.equal(retry.attempt, 3);
  assert.equal(retry.firstAttemptAt, second.firstAttemptAt);
  const [expired] = await h.waitForEvents(1, 'expired');
  assert.equal(expired.messageId, old.messageId);
  assert.match(expired.reason ?? '', /max age for critical/);
  const dead = await waitFor(() => {
    const d = h.reader.records.filter((r) => r.topic === Topics.dead).map((r) => DeadLetterContract.decode(r.message.value));
    return d.length > 0 ? d : undefined;
  }, 10_000, 'dead letter');
  assert.equal(dead[0].code, 'EXPIRED');
  assert.equal(dead[0].messageId, old.messageId);
  assert.equal(h.events('bounced').length, 0, 'expired is not a bounce');
  assert.equal(h.retries('1m').length + h.retries('5m').length, 1, 'the expired message is not retried');
});

test('a replayed dead letter counts its maximum age from the replay: deferred again, not expired at once', async (t) => {
  const h = await startHarness({ script: () => 451 }, { 'retry.maxAgeCriticalMs': 2 * 3_600_000 });
  t.after(() => h.close());
  const acceptedLongAgo = new Date(Date.now() - 2.5 * 3_600_000).toISOString();
  const replayed = recordFor(['again@example.org'], { priority: 'critical', acceptedAt: acceptedLongAgo, attempt: 7, replayedAt: new Date().toISOString() });
  const stale = recordFor(['stale@example.org'], { priority: 'critical', acceptedAt: acceptedLongAgo, attempt: 7 });
  await h.produce([replayed, stale]);
  const [deferred] = await h.waitForEvents(1, 'deferred');
  assert.equal(deferred.messageId, replayed.messageId);
  const [expired] = await h.waitForEvents(1, 'expired');
  assert.equal(expired.messageId, stale.messageId, 'without a replay the same message is past its age');
  const [retry] = await waitFor(() => (h.retries('1h').length ? h.retries('1h') : undefined), 10_000, 'retry record');
  assert.equal(retry.attempt, 8);
  assert.equal(retry.replayedAt, replayed.replayedAt, 'the replay time travels with the retries');
});
