/**
 * Fault test — poison records. For every consuming stage of the pipeline (processes, as
 * `npm start` runs them), records it cannot process: too large for the next topic, a batch no
 * codec decodes, a bad schema, a template that throws. Each time the next good message is
 * delivered within seconds, the bad one is dead-lettered with its reason, and the stage is
 * still a member of its consumer group (issue 16: one bad record must never stop a stage).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { TestContext } from 'node:test';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { waitFor } from '../helpers/broker.js';
import { Topics } from '../../shared/topics.js';
import { PRIORITIES } from '../../shared/config.js';
import { EmailRequestedContract } from '../../shared/contracts/email-requested.js';
import { EMAIL_READY_VERSION, EmailReadyForDispatchContract, type EmailReadyForDispatch } from '../../shared/contracts/email-ready-for-dispatch.js';
import type { DeadLetter } from '../../shared/contracts/dead-letter.js';
import { emailRequest } from '../renderer/email-requests.js';
import { FaultPipeline, TENANT, API_KEY } from './fault-pipeline.js';
import { corruptStoredBatch, produceGzipBatch } from './poison-records.js';

/** Kafka's default `max.message.bytes` (1 MiB + record batch overhead). */
const KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588;

/** "Within seconds" on a loaded 2-core machine running other suites too. */
const DELIVERED_WITHIN_MS = 20_000;

let sink: SmtpSink;
let pipeline: FaultPipeline;
let passed = 0;

before(async () => {
  sink = await startSmtpSink({ greetingDelay: false, script: () => 250 });
  pipeline = await FaultPipeline.start({
    stages: ['ingest', 'renderer', 'dispatcher', 'scheduler'],
    env: {
      POSTLINE_DISPATCHER_RELAY_HOST: sink.host,
      POSTLINE_DISPATCHER_RELAY_PORT: String(sink.port),
      POSTLINE_RETRY_DELAY1M_MS: '500',
    },
    // Dispatch topics at Kafka's default limit (1 MiB, as on a cluster whose topics were made
    // before Postline sized them), and a retry topic that holds what that refuses: the
    // renderer's and the scheduler's "too large for the next topic".
    topicConfigs: {
      ...Object.fromEntries(PRIORITIES.map((p) => [Topics.dispatch(p), { 'max.message.bytes': String(KAFKA_DEFAULT_MAX_MESSAGE_BYTES) }])),
      [Topics.retry('1m')]: { 'max.message.bytes': String(4 << 20) },
    },
  });
});

after(async () => {
  const keep = passed < 9;
  await pipeline?.close(keep);
  if (keep && pipeline) process.stderr.write(`poison suite: stage logs kept in ${pipeline.logDir}\n`);
  await sink?.close();
});

async function isMember(groupId: string): Promise<boolean> {
  const admin = pipeline.kafka().admin();
  await admin.connect();
  try {
    const { groups } = await admin.describeGroups([groupId]);
    return groups[0]?.state === 'Stable' && groups[0].members.length > 0;
  } finally {
    await admin.disconnect();
  }
}

/** Waits for the good message's delivery, the bad record's dead letter and the stage's membership; reports the delivery time. */
async function expectStageWentOn(
  t: TestContext,
  o: { goodTo: string; startedAt: number; dead: (d: DeadLetter) => boolean; code: string; stage: string; group: string },
): Promise<DeadLetter> {
  await waitFor(() => sink.messagesTo(o.goodTo).length > 0, DELIVERED_WITHIN_MS, `the good message to ${o.goodTo} delivered`);
  t.diagnostic(`good message delivered ${Date.now() - o.startedAt} ms after the poison record was written`);
  const dead = await waitFor(() => pipeline.deadLetters().find(o.dead), 10_000, `the ${o.code} dead letter`);
  assert.equal(dead.code, o.code, dead.reason);
  assert.equal(dead.stage, o.stage);
  assert.ok(await waitFor(() => isMember(o.group), 10_000, `${o.group} a stable group member`));
  assert.ok(pipeline.procs.get(o.stage as 'renderer')!.alive, `${o.stage} still running`);
  return dead;
}

const goodAddress = (what: string): string => `good-${what}-${randomUUID().slice(0, 8)}@example.org`;

function dispatchRecord(to: string, over: Partial<EmailReadyForDispatch> = {}): EmailReadyForDispatch {
  const messageId = randomUUID();
  return {
    schemaVersion: EMAIL_READY_VERSION,
    messageId,
    tenant: TENANT,
    priority: 'transactional',
    domain: to.split('@')[1],
    envelope: { from: 'app@sender.test', to: [to] },
    raw: `From: app@sender.test\r\nTo: ${to}\r\nSubject: poison suite\r\nMessage-ID: <${messageId}@sender.test>\r\n\r\nhello\r\n`,
    acceptedAt: new Date().toISOString(),
    attempt: 1,
    ...over,
  };
}

async function produce(topic: string, partition: number, value: Buffer | string, key: string | null = null): Promise<void> {
  await pipeline.producer.send({ topic, acks: -1, messages: [{ key, value, partition }] });
}

/**
 * Writes a batch no codec decodes at the end of `topic`/`partition`, while `stage` is stopped
 * (a running consumer would fetch the batch before its bytes are spoiled), then starts the
 * stage again; resolves with the batch's last offset.
 */
async function produceUndecodable(stage: 'renderer' | 'dispatcher' | 'scheduler', topic: string, partition: number): Promise<number> {
  await pipeline.procs.get(stage)!.kill('SIGTERM');
  const { baseOffset, compressed } = await produceGzipBatch(pipeline.broker.bootstrap, topic, partition, [{ value: 'a' }, { value: 'b' }]);
  corruptStoredBatch(pipeline.dataDir, topic, partition, compressed);
  await pipeline.startStage(stage);
  return baseOffset + 1;
}

// ---- renderer ----

test('renderer: a message that renders larger than the dispatch topic allows is dead-lettered MESSAGE_TOO_LARGE; the next is delivered', async (t) => {
  // Issue 16 item 1: ~900 KB of UTF-8 in, ~1.2 MB of base64 MIME out, over the dispatch topic's 1 MiB.
  const big = emailRequest({ tenant: TENANT, from: { email: 'app@sender.test' }, to: [{ email: 'big@example.org' }], html: 'é'.repeat(450_000), text: undefined });
  const goodTo = goodAddress('after-big');
  const startedAt = Date.now();
  await produce(Topics.requested, 0, EmailRequestedContract.encode(big), big.messageId);
  await produce(Topics.requested, 0, EmailRequestedContract.encode(emailRequest({ tenant: TENANT, from: { email: 'app@sender.test' }, to: [{ email: goodTo }] })));
  const dead = await expectStageWentOn(t, { goodTo, startedAt, dead: (d) => d.messageId === big.messageId, code: 'MESSAGE_TOO_LARGE', stage: 'renderer', group: 'postline-renderer' });
  assert.match(dead.reason, /email\.dispatch\.transactional/);
  assert.equal(dead.source.topic, Topics.requested);
  assert.equal(EmailRequestedContract.decode(Buffer.from(dead.source.value!)).messageId, big.messageId, 'the original request is kept');
  const failed = await waitFor(() => pipeline.events('failed').find((e) => e.messageId === big.messageId), 10_000, 'the failed event');
  assert.match(failed.reason ?? '', /MESSAGE_TOO_LARGE/);
  passed++;
});

test('renderer: a batch no codec decodes is dead-lettered with its raw bytes; the next request on the partition is delivered', async (t) => {
  const goodTo = goodAddress('after-undecodable');
  const startedAt = Date.now();
  const last = await produceUndecodable('renderer', Topics.requested, 0);
  await produce(Topics.requested, 0, EmailRequestedContract.encode(emailRequest({ tenant: TENANT, from: { email: 'app@sender.test' }, to: [{ email: goodTo }] })));
  const dead = await expectStageWentOn(t, {
    goodTo,
    startedAt,
    dead: (d) => d.source.topic === Topics.requested && d.source.offset === String(last),
    code: 'UNDECODABLE_BATCH',
    stage: 'renderer',
    group: 'postline-renderer',
  });
  assert.equal(dead.source.valueEncoding, 'base64');
  passed++;
});

test('renderer: a record that is not an EmailRequested is dead-lettered VALIDATION_FAILED; the next is delivered', async (t) => {
  const goodTo = goodAddress('after-garbage');
  const startedAt = Date.now();
  const garbage = `{"messageId":"garbage-${randomUUID()}","tenant":"${TENANT}","to":42}`;
  await produce(Topics.requested, 1, garbage);
  await produce(Topics.requested, 1, EmailRequestedContract.encode(emailRequest({ tenant: TENANT, from: { email: 'app@sender.test' }, to: [{ email: goodTo }] })));
  await expectStageWentOn(t, { goodTo, startedAt, dead: (d) => d.source.value === garbage, code: 'VALIDATION_FAILED', stage: 'renderer', group: 'postline-renderer' });
  passed++;
});

test('renderer: a template that throws while rendering is dead-lettered TEMPLATE_RENDER_FAILED; the next message is delivered', async (t) => {
  const put = await fetch(`${pipeline.ingestUrl}/v1/templates/poison`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
    // Strict mode: a variable the data lacks throws at render time.
    body: JSON.stringify({ subject: 'Hi {{name}}', html: '<p>{{account.owner.name}}</p>' }),
  });
  assert.ok(put.ok, await put.text());
  const goodTo = goodAddress('after-template');
  const startedAt = Date.now();
  const id = await pipeline.send({ from: 'app@sender.test', to: ['boom@example.org'], template: { name: 'poison', data: { name: 'x' } } });
  await pipeline.send({ from: 'app@sender.test', to: [goodTo], subject: 'after the template', text: 'hello' });
  const dead = await expectStageWentOn(t, { goodTo, startedAt, dead: (d) => d.messageId === id, code: 'TEMPLATE_RENDER_FAILED', stage: 'renderer', group: 'postline-renderer' });
  assert.match(dead.reason, /template "poison" html/);
  passed++;
});

// ---- dispatcher ----

test('dispatcher: a record that is not an EmailReadyForDispatch is dead-lettered; the next is delivered', async (t) => {
  const goodTo = goodAddress('dispatch-after-garbage');
  const startedAt = Date.now();
  const garbage = `{"messageId":"garbage-${randomUUID()}","tenant":"${TENANT}"}`;
  await produce(Topics.dispatch('transactional'), 0, garbage, 'example.org');
  await produce(Topics.dispatch('transactional'), 0, EmailReadyForDispatchContract.encode(dispatchRecord(goodTo)), 'example.org');
  await expectStageWentOn(t, { goodTo, startedAt, dead: (d) => d.source.value === garbage, code: 'VALIDATION_FAILED', stage: 'dispatcher', group: 'postline-dispatcher-transactional' });
  passed++;
});

test('dispatcher: a batch no codec decodes is dead-lettered; the next record on the partition is delivered', async (t) => {
  const goodTo = goodAddress('dispatch-after-undecodable');
  const startedAt = Date.now();
  const last = await produceUndecodable('dispatcher', Topics.dispatch('transactional'), 1);
  await produce(Topics.dispatch('transactional'), 1, EmailReadyForDispatchContract.encode(dispatchRecord(goodTo)), 'example.org');
  await expectStageWentOn(t, {
    goodTo,
    startedAt,
    dead: (d) => d.source.topic === Topics.dispatch('transactional') && d.source.offset === String(last),
    code: 'UNDECODABLE_BATCH',
    stage: 'dispatcher',
    group: 'postline-dispatcher-transactional',
  });
  passed++;
});

// ---- scheduler ----

const due = (to: string, over: Partial<EmailReadyForDispatch> = {}): EmailReadyForDispatch =>
  dispatchRecord(to, { attempt: 2, firstAttemptAt: new Date().toISOString(), notBefore: new Date().toISOString(), lastReason: '451 try later', ...over });

test('scheduler: a retry record larger than its dispatch topic allows is dead-lettered MESSAGE_TOO_LARGE; the next is delivered', async (t) => {
  const goodTo = goodAddress('retry-after-big');
  const big = due('big-retry@example.org', { raw: `Subject: big\r\n\r\n${'x'.repeat(1_500_000)}\r\n` });
  const startedAt = Date.now();
  await produce(Topics.retry('1m'), 0, EmailReadyForDispatchContract.encode(big), 'example.org');
  await produce(Topics.retry('1m'), 0, EmailReadyForDispatchContract.encode(due(goodTo)), 'example.org');
  const dead = await expectStageWentOn(t, { goodTo, startedAt, dead: (d) => d.messageId === big.messageId, code: 'MESSAGE_TOO_LARGE', stage: 'scheduler', group: 'postline-scheduler' });
  assert.equal(dead.source.topic, Topics.retry('1m'));
  passed++;
});

test('scheduler: a record that is not a retry record is dead-lettered; the next is delivered', async (t) => {
  const goodTo = goodAddress('retry-after-garbage');
  const startedAt = Date.now();
  const garbage = `not json ${randomUUID()}`;
  await produce(Topics.retry('1m'), 1, garbage);
  await produce(Topics.retry('1m'), 1, EmailReadyForDispatchContract.encode(due(goodTo)), 'example.org');
  await expectStageWentOn(t, { goodTo, startedAt, dead: (d) => d.source.value === garbage, code: 'VALIDATION_FAILED', stage: 'scheduler', group: 'postline-scheduler' });
  passed++;
});

test('scheduler: a batch no codec decodes is dead-lettered; the next retry record on the partition is delivered', async (t) => {
  const goodTo = goodAddress('retry-after-undecodable');
  const startedAt = Date.now();
  const last = await produceUndecodable('scheduler', Topics.retry('1m'), 1);
  await produce(Topics.retry('1m'), 1, EmailReadyForDispatchContract.encode(due(goodTo)), 'example.org');
  await expectStageWentOn(t, {
    goodTo,
    startedAt,
    dead: (d) => d.source.topic === Topics.retry('1m') && d.source.offset === String(last),
    code: 'UNDECODABLE_BATCH',
    stage: 'scheduler',
    group: 'postline-scheduler',
  });
  passed++;
});
