/**
 * Fault test — poison records for the analytics sink (its own consume loop, in process, with the
 * in-process ClickHouse engine): a batch no codec decodes among good events is dead-lettered
 * as UNDECODABLE_BATCH with its raw bytes, every good event lands, the offsets move past
 * it and the sink stays a member of its group. (Records that are not events: test/analytics/sink.test.ts.)
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Admin, Kafka } from 'kafkajs';
import { startAnalytics, type RunningAnalytics } from '../../services/analytics/main.js';
import { startTestBroker, uniqueName, waitFor, type TestBroker } from '../helpers/broker.js';
import { openTestEngine, select, type TestEngine } from '../analytics/support/engine.js';
import { generateEvents } from '../analytics/support/synthetic-events.js';
import { analyticsConfig, committedTotal, createTopic, deadLettersFrom, produce, testKafka } from '../analytics/support/sink-harness.js';
import type { EmailEvent } from '../../shared/contracts/email-event.js';
import { corruptStoredBatch, produceGzipBatch } from './poison-records.js';

let broker: TestBroker;
let engine: TestEngine;
let kafka: Kafka;
let admin: Admin;
let running: RunningAnalytics | undefined;

before(async () => {
  [broker, engine] = await Promise.all([startTestBroker(), openTestEngine()]);
  kafka = testKafka(broker.bootstrap);
  admin = kafka.admin();
  await admin.connect();
});
after(async () => {
  await running?.close();
  await admin?.disconnect();
  await broker?.destroy();
  await engine?.destroy();
});

test('analytics: a batch no codec decodes is dead-lettered (UNDECODABLE_BATCH) with its raw bytes; every good event lands and the sink stays in its group', async () => {
  const topic = uniqueName('events');
  await createTopic(admin, topic, 1);
  const good: EmailEvent[] = [];
  generateEvents({ messages: 50, start: Date.now() - 3_600_000, spanMs: 3_600_000, seed: 7 }, (e) => good.push(e));
  await produce(kafka, topic, good.slice(0, 100));
  const { baseOffset, compressed } = await produceGzipBatch(broker.bootstrap, topic, 0, [{ value: 'a' }, { value: 'b' }, { value: 'c' }]);
  corruptStoredBatch(broker.dataDir, topic, 0, compressed);
  await produce(kafka, topic, good.slice(100));
  const database = await engine.freshDatabase('poison');
  const groupId = uniqueName('analytics');
  running = await startAnalytics(analyticsConfig(broker.bootstrap, { 'analytics.database': database, 'analytics.groupId': groupId }), {
    clickhouse: engine.client,
    listen: false,
    topic,
    authenticate: () => null,
  });
  const count = async (): Promise<number> => Number((await select<{ n: number }>(engine.client, `SELECT count() AS n FROM ${database}.events`))[0].n);
  await waitFor(async () => (await count()) === good.length, 30_000, `${good.length} rows`);
  await waitFor(async () => (await committedTotal(admin, groupId, topic)) === good.length + 3, 15_000, 'committed past the bad batch');
  const dead = await deadLettersFrom(kafka, topic, 1);
  assert.equal(dead.length, 1, JSON.stringify(dead.map((d) => d.code)));
  assert.equal(dead[0].code, 'UNDECODABLE_BATCH');
  assert.equal(dead[0].source.offset, String(baseOffset + 2));
  assert.deepEqual(Buffer.from(dead[0].source.value!, 'base64'), Buffer.alloc(compressed.length, 0xab));
  const { groups } = await admin.describeGroups([groupId]);
  assert.equal(groups[0].state, 'Stable');
  assert.equal(groups[0].members.length, 1);
});
