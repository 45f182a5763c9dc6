import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { createKafka, fetchMaxWait } from './client.js';
import type { PostlineConfig } from '../config.js';
import { startTestBroker, uniqueName, waitFor } from '../../test/helpers/broker.js';

function kafkaConfig(bootstrap: string, over: Partial<PostlineConfig['kafka']> = {}): PostlineConfig['kafka'] {
  return {
    brokers: [bootstrap],
    clientId: uniqueName('client-test'),
    connectionTimeoutMs: 3000,
    requestTimeoutMs: 30_000,
    sessionTimeoutMs: 30_000,
    fetchMaxWaitMs: 3000,
    producerLingerMs: 2,
    createTopics: true,
    partitions: 1,
    replicationFactor: 1,
    ...over,
  };
}

test('the fetch wait is kafka.fetchMaxWaitMs, capped at a third of the session so heartbeats (sent between fetches) stay in time', () => {
  const cases: Array<[fetchMaxWaitMs: number, sessionTimeoutMs: number, consumerSession: number | undefined, expected: number]> = [
    [3000, 30_000, undefined, 3000],
    [3000, 10_000, undefined, 3000],
    [5000, 10_000, undefined, 3333],
    [3000, 6000, undefined, 2000],
    [3000, 30_000, 6000, 2000], // a consumer with its own (shorter) session
    [100, 30_000, undefined, 100],
  ];
  for (const [fetchMaxWaitMs, sessionTimeoutMs, consumerSession, expected] of cases) {
    assert.equal(fetchMaxWait({ fetchMaxWaitMs, sessionTimeoutMs }, consumerSession), expected, `${fetchMaxWaitMs} ms, session ${sessionTimeoutMs} ms, consumer session ${consumerSession}`);
  }
});

test('a consumer from createKafka long-polls for kafka.fetchMaxWaitMs on an idle topic', async (t) => {
  const broker = await startTestBroker();
  t.after(() => broker.destroy());
  const fetchMaxWaitMs = 1500;
  const kafka = createKafka(kafkaConfig(broker.bootstrap, { fetchMaxWaitMs }), 'wait-test', pino({ level: 'silent' }));
  const admin = kafka.admin();
  await admin.connect();
  t.after(() => admin.disconnect());
  const topic = uniqueName('idle');
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] });
  const consumer = kafka.consumer({ groupId: uniqueName('idle-group') });
  t.after(() => consumer.disconnect());
  const fetches: number[] = [];
  consumer.on(consumer.events.REQUEST, (e) => {
    if (e.payload.apiName === 'Fetch') fetches.push(e.payload.duration);
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({ eachMessage: async () => undefined });
  await waitFor(() => fetches.length >= 1, 30_000, 'an empty fetch to come back');
  // The broker held the fetch for the configured wait (kafkajs alone would wait 5 s).
  assert.ok(fetches[0] >= fetchMaxWaitMs - 50 && fetches[0] < fetchMaxWaitMs + 1000, `the empty fetch took ${fetches[0]} ms`);
});
