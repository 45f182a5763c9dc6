import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka, logLevel } from 'kafkajs';
import pino from 'pino';
import { loadPostlineConfig } from '../shared/config.js';
import { topicSpecs } from '../shared/topics.js';
import { startTestBroker, type TestBroker } from '../test/helpers/broker.js';
import { createTopics, resourceName, strimziTopics, topicsMarkdown } from './topics-command.js';

describe('postline topics', () => {
  it('renders every topic as a Strimzi KafkaTopic with its partitions, replicas and configs', () => {
    const specs = topicSpecs(4);
    const docs = strimziTopics(specs, { cluster: 'kafka-a', replicas: 3, minInsyncReplicas: 2 }) as Array<Record<string, any>>;
    assert.equal(docs.length, specs.length);
    const events = docs.find((d) => d.spec.topicName === 'email.events')!;
    assert.equal(events.metadata.name, 'email-events');
    assert.equal(events.metadata.labels['strimzi.io/cluster'], 'kafka-a');
    assert.deepEqual(events.spec, { topicName: 'email.events', partitions: 4, replicas: 3, config: { 'retention.ms': String(7 * 86_400_000), 'min.insync.replicas': '2' } });
    const suppressions = docs.find((d) => d.spec.topicName === 'email.suppressions')!;
    assert.equal(suppressions.spec.partitions, 1);
    assert.equal(suppressions.spec.config['cleanup.policy'], 'compact');
    const single = strimziTopics(specs, { cluster: 'k', replicas: 1, minInsyncReplicas: 2 }) as Array<Record<string, any>>;
    assert.ok(single.every((d) => !('min.insync.replicas' in d.spec.config)), 'no min.insync.replicas above the replica count');
  });

  it('names resources as Kubernetes allows', () => {
    for (const s of topicSpecs(1)) assert.match(resourceName(s.topic), /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
  });

  it('lists the topics with partitions and retention', () => {
    const md = topicsMarkdown(topicSpecs(6));
    assert.match(md, /\| `email\.requested` \| 6 \| 7 days; records up to 34\.33 MiB \|/);
    assert.match(md, /\| `email\.templates` \| 1 \| compacted/);
    assert.match(md, /\| `email\.dead` \| 6 \| 30 days; records up to 32\.25 MiB \|/);
  });

  describe('create', () => {
    let broker: TestBroker;
    before(async () => {
      broker = await startTestBroker();
    });
    after(() => broker.destroy());

    it('creates every missing topic with its partitions, and leaves existing ones alone', async () => {
      const config = loadPostlineConfig({ env: {}, overrides: { 'kafka.brokers': [broker.bootstrap], 'log.level': 'silent' } });
      const logger = pino({ level: 'silent' });
      const created = await createTopics(config, 2, 1, logger);
      assert.deepEqual(created.sort(), topicSpecs(2).map((s) => s.topic).sort());
      assert.deepEqual(await createTopics(config, 2, 1, logger), [], 'a second run creates nothing');
      const admin = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING }).admin();
      await admin.connect();
      try {
        const meta = await admin.fetchTopicMetadata({ topics: ['email.requested', 'email.templates'] });
        assert.deepEqual(meta.topics.map((t) => [t.name, t.partitions.length]).sort(), [['email.requested', 2], ['email.templates', 1]]);
      } finally {
        await admin.disconnect();
      }
    });
  });
});
