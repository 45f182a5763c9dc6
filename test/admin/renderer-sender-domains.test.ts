/**
 * The renderer applies sender domains added by an administrator (on email.admin) to records
 * produced straight to Kafka, live and per tenant: once `acme` has a domain, `acme`'s mail from
 * another domain is dead-lettered SENDER_DOMAIN, while `acme/eu` (named nowhere) still sends.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { startTestBroker, uniqueName, waitFor, type TestBroker } from '../helpers/broker.js';
import { TopicReader } from '../helpers/topic-reader.js';
import { PRIORITIES, loadPostlineConfig } from '../../shared/config.js';
import { Topics } from '../../shared/topics.js';
import { BatchingProducer } from '../../shared/kafka/batching-producer.js';
import { EmailRequestedContract, type EmailRequested } from '../../shared/contracts/email-requested.js';
import type { DeadLetter } from '../../shared/contracts/dead-letter.js';
import { openAdminDirectory, type OpenedAdminDirectory } from '../../shared/admin/open-admin-directory.js';
import { startRenderer, type RunningRenderer } from '../../services/renderer/main.js';
import { emailRequest } from '../renderer/email-requests.js';

const silent = pino({ level: 'silent' });
let broker: TestBroker;
let renderer: RunningRenderer;
let reader: TopicReader;
let producer: Producer;
let adminProducer: Producer;
let admin: OpenedAdminDirectory;

before(async () => {
  broker = await startTestBroker();
  const config = loadPostlineConfig({ env: {}, overrides: { 'log.level': 'silent', 'kafka.brokers': [broker.bootstrap], 'kafka.partitions': 1, 'ops.host': '127.0.0.1', 'ops.port': 0 } });
  renderer = await startRenderer(config, { logger: silent, groupId: uniqueName('renderer'), ops: false });
  const kafka = new Kafka({ brokers: [broker.bootstrap], clientId: 'renderer-admin-test', logLevel: logLevel.NOTHING });
  producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  adminProducer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await adminProducer.connect();
  // The ingest API's side of email.admin: its own table and producer.
  admin = await openAdminDirectory({ kafka, producer: new BatchingProducer(adminProducer), logger: silent });
  reader = await new TopicReader(broker.bootstrap, [...PRIORITIES.map((p) => Topics.dispatch(p)), Topics.dead]).start();
});

after(async () => {
  await reader?.stop();
  await admin?.stop();
  await adminProducer?.disconnect();
  await producer?.disconnect();
  await renderer?.close();
  await broker?.destroy();
});

const produce = (req: EmailRequested) => producer.send({ topic: Topics.requested, acks: -1, messages: [{ key: req.messageId, value: EmailRequestedContract.encode(req) }] });
const dispatched = (id: string) => reader.records.filter((r) => r.topic.startsWith('email.dispatch.') && r.message.value?.toString().includes(id));
const dead = (id: string) => reader.json<DeadLetter>(Topics.dead).filter((d) => JSON.stringify(d).includes(id));

test('an added domain restricts that tenant at once; acme/eu is not acme', async () => {
  const before = emailRequest({ tenant: 'acme', from: { email: 'a@other.example' } });
  await produce(before);
  await waitFor(() => dispatched(before.messageId).length > 0, 20_000, 'no domains yet: sent');

  await admin.directory.addDomain('acme', 'shop.example');
  const refused = emailRequest({ tenant: 'acme', from: { email: 'a@other.example' } });
  const allowed = emailRequest({ tenant: 'acme', from: { email: 'a@shop.example' } });
  const eu = emailRequest({ tenant: 'acme/eu', from: { email: 'a@other.example' } });
  // The renderer reads email.admin on its own: probe until it has (within a second or so), never a fixed sleep.
  const t0 = Date.now();
  for (;;) {
    const probe = emailRequest({ tenant: 'acme', from: { email: 'probe@other.example' } });
    await produce(probe);
    await waitFor(() => dead(probe.messageId).length > 0 || dispatched(probe.messageId).length > 0, 20_000, 'the probe handled');
    if (dead(probe.messageId).length > 0) break;
    assert.ok(Date.now() - t0 < 5000, 'the renderer did not apply the added domain within 5 s');
  }
  await produce(refused);
  await produce(allowed);
  await produce(eu);
  await waitFor(() => dead(refused.messageId).length > 0 || dispatched(refused.messageId).length > 0, 20_000, 'the refused one handled');
  assert.equal(dead(refused.messageId)[0]?.code, 'SENDER_DOMAIN');
  assert.equal(dispatched(refused.messageId).length, 0);
  await waitFor(() => dispatched(allowed.messageId).length > 0, 20_000, 'its own domain: sent');
  await waitFor(() => dispatched(eu.messageId).length > 0, 20_000, 'acme/eu: sent');
});
