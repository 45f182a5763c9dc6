/**
 * Broker metrics stay bounded whatever topic names clients choose: at most `metricsMaxTopics`
 * topics get their own label, the rest count under `(other)`, and a deleted topic's series go.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Admin, Producer } from 'kafkajs';
import { startTestBroker, uniqueName, type TestBroker } from '../helpers/broker.js';
import { testKafka } from './support/kafkajs-clients.js';

let broker: TestBroker;
let admin: Admin;
let producer: Producer;

before(async () => {
  broker = await startTestBroker({ metricsMaxTopics: 3 });
  const kafka = testKafka(broker.bootstrap);
  admin = kafka.admin();
  producer = kafka.producer();
  await Promise.all([admin.connect(), producer.connect()]);
});

after(async () => {
  await Promise.all([admin.disconnect(), producer.disconnect()]);
  await broker.destroy();
});

/** topic label → value for one metric (summed over its other labels). */
async function byTopic(name: string): Promise<Map<string, number>> {
  const metric = (await broker.registry.getMetricsAsJSON()).find((m) => m.name === name);
  const out = new Map<string, number>();
  for (const v of (metric as { values: Array<{ labels: Record<string, string>; value: number }> }).values) {
    out.set(v.labels.topic, (out.get(v.labels.topic) ?? 0) + v.value);
  }
  return out;
}

test('at most metricsMaxTopics topic labels; the rest count as (other); a deleted topic frees its label', async () => {
  const topics = Array.from({ length: 6 }, () => uniqueName('label'));
  await admin.createTopics({ topics: topics.map((topic) => ({ topic })) });
  for (const topic of topics) await producer.send({ topic, acks: -1, messages: [{ value: 'a' }, { value: 'b' }] });

  const records = await byTopic('postline_broker_records_in_total');
  assert.equal(records.size, 4, `3 topics and (other): ${[...records.keys()].join(', ')}`);
  assert.equal(records.get('(other)'), 6, 'the 3 topics past the cap, 2 records each');
  assert.equal([...records.values()].reduce((a, b) => a + b, 0), 12, 'no record goes uncounted');
  const labelled = [...records.keys()].filter((k) => k !== '(other)');
  const offsets = await byTopic('postline_broker_log_end_offset');
  assert.deepEqual([...offsets.keys()].sort(), [...labelled].sort(), 'per-partition gauges only for labelled topics');
  assert.ok((await byTopic('postline_broker_log_size_bytes')).get('(other)')! > 0, 'sizes of the rest are summed');

  await admin.deleteTopics({ topics: [labelled[0]] });
  const unlabelled = topics.find((t) => !labelled.includes(t)) as string;
  await producer.send({ topic: unlabelled, acks: -1, messages: [{ value: 'c' }] });
  const after = await byTopic('postline_broker_records_in_total');
  assert.ok(!after.has(labelled[0]), 'the deleted topic’s series are gone');
  assert.equal(after.get(unlabelled), 1, 'its label went to a topic that had none');
});
