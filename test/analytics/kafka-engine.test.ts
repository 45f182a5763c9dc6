/**
 * The production alternative — ClickHouse's Kafka engine reading email.events itself — run for
 * real: the embedded engine's Kafka table consumes from the embedded broker, valid events land
 * in the same events table (and, through its views, the rollups), malformed ones in
 * events_rejected with the reason.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Admin, Kafka } from 'kafkajs';
import { dropKafkaEngineStatements, kafkaEngineStatements } from '../../services/analytics/schema/kafka-engine.js';
import { startTestBroker, uniqueName, waitFor, type TestBroker } from '../helpers/broker.js';
import { toEventRow } from '../../services/analytics/sink/event-row.js';
import { openTestEngine, select, type TestEngine } from './support/engine.js';
import { fixtureEvents, fixtureT0 } from './support/fixture-stream.js';
import { createTopic, produce, testKafka } from './support/sink-harness.js';

let broker: TestBroker;
let engine: TestEngine;
let kafka: Kafka;
let admin: Admin;
let database: string | undefined;

before(async () => {
  [broker, engine] = await Promise.all([startTestBroker(), openTestEngine()]);
  kafka = testKafka(broker.bootstrap);
  admin = kafka.admin();
  await admin.connect();
});
after(async () => {
  // Stop ClickHouse's consumer before the broker goes away.
  if (database) for (const query of dropKafkaEngineStatements(database)) await engine.client.command({ query });
  await admin?.disconnect();
  await broker?.destroy();
  await engine?.destroy();
});

test('Kafka-engine table and views: valid events reach the events table and rollups, malformed ones events_rejected', async () => {
  const topic = uniqueName('events');
  await createTopic(admin, topic, 2);
  database = await engine.freshDatabase('kafkaengine');
  const events = fixtureEvents(fixtureT0());
  const malformed = ['{"schemaVersion":1,"eventId":"bad-1","type":"sent"}', 'not json', JSON.stringify({ ...events[0], eventId: 'bad-3', type: 'teleported' })];
  await produce(kafka, topic, [...events, ...malformed]);
  for (const query of kafkaEngineStatements({ database, brokers: [broker.bootstrap], topic, groupName: uniqueName('clickhouse') })) await engine.client.command({ query });

  const count = async (table: string): Promise<number> => Number((await select<{ n: number }>(engine.client, `SELECT count() AS n FROM ${database}.${table}`))[0].n);
  const rolledUp = async (): Promise<number> => Number((await select<{ n: number }>(engine.client, `SELECT sum(events) AS n FROM ${database}.stats_per_minute`))[0].n);
  // The rollup is a view of `events`, fed in the same insert but visible a moment after it: wait for all three.
  await waitFor(
    async () => (await count('events')) === events.length && (await count('events_rejected')) === malformed.length && (await rolledUp()) === events.length,
    60_000,
    'ClickHouse consumed the topic into events, events_rejected and the rollup',
  );

  const stored = await select<Record<string, unknown>>(engine.client, `SELECT * FROM ${database}.events WHERE event_id = {id:String}`, { id: events[2].eventId });
  const e = events[2];
  assert.deepEqual(
    [stored[0].type, stored[0].message_id, stored[0].tenant, stored[0].domain, stored[0].attempt, stored[0].smtp_code, stored[0].smtp_enhanced, stored[0].kafka_topic],
    [e.type, e.messageId, e.tenant, e.domain, e.attempt, e.smtp!.code, e.smtp!.enhanced, topic],
  );
  assert.equal(Date.parse(`${stored[0].at as string}Z`), Date.parse(e.at));
  // The direct-delivery fields land in their columns as the sink would map them.
  const delivery = await select<Record<string, string>>(
    engine.client,
    `SELECT event_id, tls, source_ip, site, bounce_category, dkim_domain, dkim_selector FROM ${database}.events WHERE event_id IN {ids:Array(String)} ORDER BY event_id`,
    { ids: [events[1].eventId, events[4].eventId, events[0].eventId] },
  );
  const want = [events[0], events[1], events[4]].map((x) => {
    const row = toEventRow(x, { topic, partition: 0, offset: '0' });
    return { event_id: row.event_id, tls: row.tls, source_ip: row.source_ip, site: row.site, bounce_category: row.bounce_category, dkim_domain: row.dkim_domain, dkim_selector: row.dkim_selector };
  });
  assert.deepEqual(delivery.sort((a, b) => a.event_id.localeCompare(b.event_id)), want.sort((a, b) => a.event_id.localeCompare(b.event_id)));
  assert.equal(want.find((w) => w.event_id === events[4].eventId)!.site, 'google', 'the fixture event chosen carries a site');
  assert.equal(want.find((w) => w.event_id === events[1].eventId)!.dkim_selector, 's2026', 'and one a DKIM key');
  assert.equal(await rolledUp(), events.length, 'each valid event counted once in the rollup');
  const rejected = await select<{ reason: string }>(engine.client, `SELECT reason FROM ${database}.events_rejected ORDER BY kafka_offset`);
  const reasons = rejected.map((r) => r.reason).join(' | ');
  assert.match(reasons, /messageId missing/);
  assert.match(reasons, /not JSON/);
  assert.match(reasons, /type is not an event type/);
});

test('the DDL refuses values that are not plain names', () => {
  assert.throws(() => kafkaEngineStatements({ database: 'db', brokers: ["x' , kafka_topic_list='y"], topic: 't', groupName: 'g' }), /host:port/);
  assert.throws(() => kafkaEngineStatements({ database: 'db', brokers: ['k:9092'], topic: "t'", groupName: 'g' }), /plain Kafka names/);
  assert.throws(() => kafkaEngineStatements({ database: 'db;', brokers: ['k:9092'], topic: 't', groupName: 'g' }), /identifier/);
});
