/**
 * Dead letters: the tenant-scoped API (list, replay) mounted the way the ingest app mounts it,
 * and `postline dead list | replay` as a process, against the embedded broker.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import Fastify, { type FastifyInstance } from 'fastify';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { TSchema } from '@sinclair/typebox';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import pino from 'pino';
import { ValidationError } from '../../shared/errors.js';
import { DEAD_LETTER_VERSION, DeadLetterContract, type DeadLetter } from '../../shared/contracts/dead-letter.js';
import { EmailReadyForDispatchContract } from '../../shared/contracts/email-ready-for-dispatch.js';
import { Topics, topicSpecs } from '../../shared/topics.js';
import { ensureTopics } from '../../shared/kafka/client.js';
import { toHttpError } from '../../shared/http/errors.js';
import { DeadLetterIndex } from '../../shared/dead-letters/dead-letter-index.js';
import { fetchDeadLetters, produceWith } from '../../shared/dead-letters/dead-letters.js';
import { registerDeadLetterRoutes } from '../../shared/dead-letters/dead-letter-routes.js';
import { startTestBroker, waitFor, type TestBroker } from '../helpers/broker.js';
import { TopicReader } from '../helpers/topic-reader.js';
import { recordFor } from '../dispatcher/fleet-support.js';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const run = promisify(execFile);

let broker: TestBroker;
let producer: Producer;
let index: DeadLetterIndex;
let app: FastifyInstance;
let reader: TopicReader;

const expired = recordFor(['late@example.org'], { tenant: 'acme', priority: 'critical', attempt: 6, notBefore: new Date().toISOString() });

function letter(over: Partial<DeadLetter>, source: Partial<DeadLetter['source']>): DeadLetter {
  return {
    schemaVersion: DEAD_LETTER_VERSION,
    code: 'EXPIRED',
    reason: 'undelivered after 6 attempts',
    stage: 'dispatcher',
    failedAt: new Date().toISOString(),
    ...over,
    source: { topic: Topics.dispatch('critical'), partition: 0, offset: '7', key: 'example.org', value: null, valueEncoding: 'utf8', headers: {}, ...source },
  };
}

const LETTERS: DeadLetter[] = [
  letter({ messageId: expired.messageId, tenant: 'acme', failedAt: new Date(Date.now() - 60_000).toISOString() }, { value: EmailReadyForDispatchContract.encode(expired).toString('utf8') }),
  letter(
    { messageId: 'req-1', tenant: 'acme', code: 'TEMPLATE_NOT_FOUND', stage: 'renderer', reason: 'no template "welcome"' },
    { topic: Topics.requested, key: 'req-1', value: '{"schemaVersion":1,"messageId":"req-1","tenant":"acme"}', headers: { traceparent: 't-1' } },
  ),
  letter({ messageId: 'other-1', tenant: 'globex' }, { value: EmailReadyForDispatchContract.encode(recordFor(['x@example.net'], { tenant: 'globex' })).toString('utf8') }),
  // A tenant whose name extends acme's: its own tenant, never part of acme.
  letter({ messageId: 'eu-1', tenant: 'acme/eu' }, { value: EmailReadyForDispatchContract.encode(recordFor(['eu@example.eu'], { tenant: 'acme/eu' })).toString('utf8') }),
];

/** The app as ingest builds it: TypeBox validation, one error handler, the tenant set before the routes. */
async function buildTestApp(): Promise<FastifyInstance> {
  const a = Fastify({ logger: false });
  a.setValidatorCompiler(({ schema }) => {
    const check = TypeCompiler.Compile(schema as TSchema);
    return (data: unknown) => (check.Check(data) ? { value: data } : { error: new ValidationError([...check.Errors(data)].map((e) => ({ path: e.path, message: e.message }))) });
  });
  a.decorateRequest('tenant', '');
  a.setErrorHandler(async (err, _req, reply) => {
    const h = toHttpError(err);
    return reply.code(h.status).send(h.body);
  });
  a.addHook('onRequest', async (req) => {
    req.tenant = String(req.headers['x-tenant'] ?? '');
  });
  await registerDeadLetterRoutes(a, { index, fetch: (ids) => fetchDeadLetters(kafka(), ids), produce: produceWith(producer) });
  return a;
}

const kafka = (): Kafka => new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });

before(async () => {
  broker = await startTestBroker();
  const admin = kafka().admin();
  await admin.connect();
  await ensureTopics(admin, topicSpecs(2), 1);
  await admin.disconnect();
  producer = kafka().producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  for (const l of LETTERS) await producer.send({ topic: Topics.dead, acks: -1, messages: [{ key: l.messageId ?? null, value: DeadLetterContract.encode(l) }] });
  index = new DeadLetterIndex({ kafka: kafka(), logger: pino({ level: 'silent' }) });
  await index.start();
  app = await buildTestApp();
  reader = await new TopicReader(broker.bootstrap, [Topics.dispatch('critical'), Topics.requested]).start();
});

after(async () => {
  await app?.close();
  await reader?.stop();
  await index?.stop();
  await producer?.disconnect();
  await broker?.destroy();
});

test('GET /v1/dead-letters lists only the tenant’s own, newest first, without content', async () => {
  const acme = await app.inject({ method: 'GET', url: '/v1/dead-letters', headers: { 'x-tenant': 'acme' } });
  assert.equal(acme.statusCode, 200);
  const list = acme.json().deadLetters as Array<Record<string, unknown>>;
  assert.deepEqual(list.map((l) => l.messageId), ['req-1', expired.messageId]);
  assert.deepEqual(list[1].recipients, ['late@example.org']);
  assert.equal(list[1].code, 'EXPIRED');
  assert.ok(list.every((l) => !JSON.stringify(l).includes('Hello ')), 'no message content');
  const globex = await app.inject({ method: 'GET', url: '/v1/dead-letters', headers: { 'x-tenant': 'globex' } });
  assert.deepEqual((globex.json().deadLetters as Array<{ messageId: string }>).map((l) => l.messageId), ['other-1']);
  const filtered = await app.inject({ method: 'GET', url: '/v1/dead-letters?code=TEMPLATE_NOT_FOUND&limit=5', headers: { 'x-tenant': 'acme' } });
  assert.deepEqual((filtered.json().deadLetters as Array<{ messageId: string }>).map((l) => l.messageId), ['req-1']);
  const bad = await app.inject({ method: 'GET', url: '/v1/dead-letters?limit=0', headers: { 'x-tenant': 'acme' } });
  assert.equal(bad.statusCode, 400);
});

test('POST /v1/dead-letters/replay: another tenant’s message is not found; the tenant’s expired one goes back to dispatch as the next attempt', async () => {
  const foreign = await app.inject({ method: 'POST', url: '/v1/dead-letters/replay', headers: { 'x-tenant': 'acme' }, payload: { messageIds: ['other-1'] } });
  assert.equal(foreign.statusCode, 404);
  assert.equal(foreign.json().error.code, 'NOT_FOUND');
  const invalid = await app.inject({ method: 'POST', url: '/v1/dead-letters/replay', headers: { 'x-tenant': 'acme' }, payload: { messageIds: [], since: 'yesterday' } });
  assert.equal(invalid.statusCode, 400);

  const res = await app.inject({ method: 'POST', url: '/v1/dead-letters/replay', headers: { 'x-tenant': 'acme' }, payload: { messageIds: [expired.messageId] } });
  assert.equal(res.statusCode, 200);
  assert.deepEqual(
    (res.json().replayed as Array<Record<string, unknown>>).map(({ messageId, topic, kind }) => ({ messageId, topic, kind })),
    [{ messageId: expired.messageId, topic: Topics.dispatch('critical'), kind: 'dispatch' }],
  );
  const [record] = await waitFor(() => {
    const r = reader.records.filter((x) => x.topic === Topics.dispatch('critical')).map((x) => EmailReadyForDispatchContract.decode(x.message.value));
    return r.length ? r : undefined;
  }, 10_000, 'replayed dispatch record');
  assert.equal(record.messageId, expired.messageId);
  assert.equal(record.attempt, 7);
  assert.ok(record.replayedAt);
  assert.equal(record.notBefore, undefined);
});

test('nested tenant names: acme never lists or replays acme/eu’s dead letters, and the other way round', async () => {
  const list = async (tenant: string) => ((await app.inject({ method: 'GET', url: '/v1/dead-letters', headers: { 'x-tenant': tenant } })).json().deadLetters as Array<{ messageId: string }>).map((l) => l.messageId);
  assert.ok(!(await list('acme')).includes('eu-1'));
  assert.deepEqual(await list('acme/eu'), ['eu-1']);
  const byId = await app.inject({ method: 'GET', url: '/v1/dead-letters?messageId=eu-1', headers: { 'x-tenant': 'acme' } });
  assert.deepEqual(byId.json().deadLetters, []);
  for (const [tenant, id] of [['acme', 'eu-1'], ['acme/eu', 'req-1'], ['acme/eu', expired.messageId]]) {
    const replay = await app.inject({ method: 'POST', url: '/v1/dead-letters/replay', headers: { 'x-tenant': tenant }, payload: { messageIds: [id] } });
    assert.equal(replay.statusCode, 404, `${tenant} replaying ${id}`);
  }
});

test('postline dead list and replay --id: every tenant’s dead letters; a renderer failure goes back verbatim to email.requested', async () => {
  const env = { ...process.env, POSTLINE_KAFKA_BROKERS: broker.bootstrap, POSTLINE_LOG_LEVEL: 'warn' };
  const entry = path.join(ROOT, 'services', 'postline.mjs');
  const list = await run(process.execPath, [entry, 'dead', 'list', '--json'], { env, cwd: ROOT });
  const rows = list.stdout.trim().split('\n').map((l) => JSON.parse(l) as { messageId: string; tenant: string });
  assert.deepEqual(rows.map((r) => r.messageId).sort(), [expired.messageId, 'eu-1', 'other-1', 'req-1'].sort());

  const replay = await run(process.execPath, [entry, 'dead', 'replay', '--id', 'req-1', '--json'], { env, cwd: ROOT });
  const results = replay.stdout.trim().split('\n').map((l) => JSON.parse(l) as { messageId: string; topic: string; kind: string });
  assert.deepEqual(results.map(({ messageId, topic, kind }) => ({ messageId, topic, kind })), [{ messageId: 'req-1', topic: Topics.requested, kind: 'verbatim' }]);
  const requested = await waitFor(() => reader.records.find((x) => x.topic === Topics.requested), 10_000, 'replayed request');
  assert.equal(requested.message.value?.toString(), LETTERS[1].source.value);
  assert.equal(requested.message.key?.toString(), 'req-1');
  assert.equal(requested.message.headers?.traceparent?.toString(), 't-1');

  const usage = await run(process.execPath, [entry, 'dead', 'replay'], { env, cwd: ROOT }).catch((e: { code: number; stderr: string }) => e);
  assert.equal((usage as { code: number }).code, 2, 'replay without --id or --since is refused');
});
