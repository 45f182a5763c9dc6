/**
 * What the send API refuses at the edge, a foreign producer may still write straight to
 * `email.requested`. The renderer (real broker, real renderer) must dead-letter such records
 * with their reason and keep rendering: template data nested 10,000 deep (which would overflow
 * the stack of whatever walks it) and a template name that is a path into another tenant's
 * templates (`acme` naming `eu/welcome` of tenant `acme/eu`).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { startTestBroker, uniqueName, waitFor, type TestBroker } from '../helpers/broker.js';
import { TopicReader } from '../helpers/topic-reader.js';
import { loadPostlineConfig } from '../../shared/config.js';
import { Topics } from '../../shared/topics.js';
import { BatchingProducer } from '../../shared/kafka/batching-producer.js';
import { openTemplateRepository } from '../../shared/templates/template-repository.js';
import type { DeadLetter } from '../../shared/contracts/dead-letter.js';
import { startRenderer, type RunningRenderer } from '../../services/renderer/main.js';

const silent = pino({ level: 'silent' });
let broker: TestBroker;
let renderer: RunningRenderer;
let producer: Producer;
let reader: TopicReader;

before(async () => {
  broker = await startTestBroker();
  const config = loadPostlineConfig({
    env: {},
    overrides: { 'log.level': 'silent', 'kafka.brokers': [broker.bootstrap], 'kafka.partitions': 1, 'ops.host': '127.0.0.1', 'ops.port': 0 },
  });
  renderer = await startRenderer(config, { logger: silent, groupId: uniqueName('renderer') });
  const kafka = new Kafka({ brokers: [broker.bootstrap], clientId: 'foreign-producer', logLevel: logLevel.NOTHING });
  producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  // acme/eu's own template, stored the way the API stores it.
  const raw = kafka.producer();
  await raw.connect();
  const templates = await openTemplateRepository({ kafka, producer: new BatchingProducer(raw), logger: silent });
  await templates.repository.put('acme/eu', 'welcome', { subject: 'EU secret', text: 'EU only' });
  await templates.stop();
  await raw.disconnect();
  reader = await new TopicReader(broker.bootstrap, [Topics.dead, ...(['critical', 'transactional', 'bulk'] as const).map((p) => Topics.dispatch(p))]).start();
});

after(async () => {
  await reader?.stop();
  await producer?.disconnect();
  await renderer?.close();
  await broker?.destroy();
});

function request(messageId: string, content: string): string {
  return `{"schemaVersion":1,"messageId":"${messageId}","tenant":"acme","acceptedAt":"2026-03-01T12:00:00.000Z","priority":"transactional","from":{"email":"noreply@shop.example"},"to":[{"email":"alice@example.org"}],${content}}`;
}

test('a record nested 10,000 deep and a template name that is a path are dead-lettered; the next good record is rendered', async () => {
  const deep = randomUUID();
  const path = randomUUID();
  const good = randomUUID();
  const data = `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`;
  await producer.send({
    topic: Topics.requested,
    acks: -1,
    messages: [
      { key: deep, value: request(deep, `"template":{"name":"welcome","data":${data}}`) },
      { key: path, value: request(path, '"template":{"name":"eu/welcome","data":{}}') },
      { key: good, value: request(good, '"subject":"Hi","text":"fine"') },
    ],
  });
  const dead = (id: string) => reader.json<DeadLetter>(Topics.dead).find((d) => d.messageId === id || d.source.key === id);
  const deadDeep = await waitFor(() => dead(deep), 20_000, 'the deep record dead-lettered');
  assert.equal(deadDeep.code, 'VALIDATION_FAILED');
  assert.match(deadDeep.reason, /nested more than/);
  const deadPath = await waitFor(() => dead(path), 20_000, 'the path-named record dead-lettered');
  assert.equal(deadPath.code, 'VALIDATION_FAILED');
  assert.match(deadPath.reason, /template\.name/);
  const rendered = await waitFor(() => reader.records.find((r) => r.topic.startsWith('email.dispatch.') && r.message.value?.includes(good)), 20_000, 'the good record rendered');
  assert.ok(rendered);
  assert.ok(!reader.records.some((r) => r.topic.startsWith('email.dispatch.') && r.message.value?.toString().includes('EU only')), 'acme/eu’s template never rendered for acme');
});
