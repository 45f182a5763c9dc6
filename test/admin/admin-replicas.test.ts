/**
 * Two ApiKeyStore instances on one broker, each over its own AdminDirectory (as two replicas of
 * a stage have): a key created through one authenticates on the other, a revocation through one
 * is refused by the other within a second, and a replica started later loads everything before
 * it answers.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { BatchingProducer } from '../../shared/kafka/batching-producer.js';
import { openAdminDirectory, type OpenedAdminDirectory } from '../../shared/admin/open-admin-directory.js';
import { ApiKeyStore } from '../../shared/http/api-keys.js';
import { startTestBroker, uniqueName, waitFor, type TestBroker } from '../helpers/broker.js';

let broker: TestBroker;
let kafka: Kafka;
let raw: Producer;
let producer: BatchingProducer;
const opened: OpenedAdminDirectory[] = [];
const topic = uniqueName('email.admin');
const logger = pino({ level: 'silent' });

async function replica(): Promise<{ directory: OpenedAdminDirectory['directory']; keys: ApiKeyStore }> {
  const o = await openAdminDirectory({ kafka, producer, logger, topic });
  opened.push(o);
  return { directory: o.directory, keys: new ApiKeyStore([], o.directory) };
}

before(async () => {
  broker = await startTestBroker();
  kafka = new Kafka({ clientId: 'admin-replicas', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 1, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }] });
  await admin.disconnect();
  raw = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await raw.connect();
  producer = new BatchingProducer(raw, { lingerMs: 2 });
});

after(async () => {
  for (const o of opened) await o.stop();
  await producer.drain();
  await raw.disconnect();
  await broker.destroy();
});

test('revoked through one store, refused by the other within 1 s; tenants acme and acme/eu kept apart', async () => {
  const a = await replica();
  const b = await replica();
  const acme = await a.directory.createKey({ tenant: 'acme', name: 'one', scopes: ['send'] });
  const eu = await a.directory.createKey({ tenant: 'acme/eu', name: 'one', scopes: ['send', 'read'] });
  await waitFor(() => b.keys.authenticate(acme.key) === 'acme' && b.keys.authenticate(eu.key) === 'acme/eu', 1000, 'both keys on replica b');
  assert.deepEqual(b.keys.identify(eu.key)?.scopes, ['send', 'read']);

  const t0 = Date.now();
  await a.directory.revokeKey(acme.view.id);
  assert.equal(a.keys.authenticate(acme.key), undefined, 'refused at once where it was revoked');
  await waitFor(() => b.keys.authenticate(acme.key) === undefined, 1000, 'replica b to refuse the revoked key');
  const ms = Date.now() - t0;
  assert.equal(b.keys.authenticate(eu.key), 'acme/eu', "acme's revocation leaves acme/eu's key alone");
  process.stdout.write(`# revocation refused by the other store ${ms} ms after the revoke call started\n`);

  // A store started now loads the whole topic before answering.
  await a.directory.addDomain('acme/eu', 'eu.example');
  const c = await replica();
  assert.equal(c.keys.authenticate(acme.key), undefined);
  assert.equal(c.keys.authenticate(eu.key), 'acme/eu');
  assert.deepEqual(c.directory.domainsOf('acme/eu'), ['eu.example']);
  assert.equal(c.directory.domainsOf('acme'), undefined);
});

test('last use reaches the other replica, written once for many uses', async () => {
  const a = await replica();
  const b = await replica();
  const { view, key } = await a.directory.createKey({ tenant: 'acme', name: 'busy', scopes: ['send'] });
  await waitFor(() => b.directory.keyRecord(view.id), 1000, 'the key on replica b');
  const before = await endOffset();
  for (let i = 0; i < 200; i++) b.keys.authenticate(key);
  await waitFor(() => a.directory.view(view.id)?.lastUsedAt, 1000, 'last use on replica a');
  // Replica a has read b's write, so its own uses within the minute write nothing.
  for (let i = 0; i < 200; i++) a.keys.authenticate(key);
  await a.directory.createTenant(uniqueName('marker'));
  assert.equal((await endOffset()) - before, 2, 'one last-used record and the marker');
});

async function endOffset(): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return (await admin.fetchTopicOffsets(topic)).reduce((n, o) => n + Number(o.high), 0);
  } finally {
    await admin.disconnect();
  }
}
