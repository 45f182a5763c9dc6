/**
 * Idempotency-Key across replicas and restarts: two ingest instances share one broker; the
 * same key from the same tenant yields one message id and one EmailRequested record, also
 * after every instance restarted, and a claim left pending by a dead replica is completed.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Producer } from 'kafkajs';
import { Topics } from '../../shared/topics.js';
import { IngestHarness, auth, email } from './ingest-harness.js';
import type { IngestHandle } from '../../services/ingest/main.js';
import { normalizeEmail } from '../../services/ingest/normalize-email.js';
import { claimKey, requestFingerprint, type IdempotencyClaim } from '../../services/ingest/idempotency-claims.js';
import type { EmailBody } from '../../services/ingest/email-body-schema.js';

let h: IngestHarness;
let a: IngestHandle;
let b: IngestHandle;
let producer: Producer;

before(async () => {
  h = await IngestHarness.start();
  [a, b] = [await h.ingest(), await h.ingest()];
  producer = h.kafka.producer();
  await producer.connect();
  await h.collect();
});
after(async () => {
  await producer.disconnect();
  await h.stop();
});

const send = (app: IngestHandle, key: string, body: object = email(), tenant: 'acme' | 'globex' | 'acme/eu' = 'acme') =>
  app.app.inject({ method: 'POST', url: '/v1/emails', headers: { ...auth(tenant), 'idempotency-key': key }, payload: body });

/** EmailRequested records carrying `key` (for any message id). */
const recordsWithKey = (key: string) => (h.records.get(Topics.requested) ?? []).filter((r) => r.value.idempotencyKey === key);

test('a replay on another replica returns the original id and produces nothing', async () => {
  const first = await send(a, 'order-1');
  assert.equal(first.statusCode, 202);
  const { id } = first.json();
  const offsets = [await h.endOffset(Topics.requested), await h.endOffset(Topics.events)];

  for (const app of [a, b, a]) {
    const again = await send(app, 'order-1');
    assert.equal(again.statusCode, 202);
    assert.equal(again.json().id, id);
    assert.equal(again.headers['idempotent-replayed'], 'true');
  }
  assert.deepEqual([await h.endOffset(Topics.requested), await h.endOffset(Topics.events)], offsets, 'replays produce nothing');
  await h.caughtUp();
  assert.equal(h.on(Topics.requested, id).length, 1);
});

test('the same key with a different body is refused with 422; another tenant’s same key is its own', async () => {
  await send(a, 'order-2');
  const offset = await h.endOffset(Topics.requested);
  const changed = await send(b, 'order-2', email({ subject: 'Something else' }));
  assert.equal(changed.statusCode, 422);
  assert.equal(changed.json().error.code, 'IDEMPOTENCY_KEY_REUSED');
  assert.equal(await h.endOffset(Topics.requested), offset);

  const other = await send(b, 'order-2', email(), 'globex');
  assert.equal(other.statusCode, 202);
  assert.notEqual(other.json().id, (await send(a, 'order-2')).json().id);
});

test('nested tenant names: acme and acme/eu with the same Idempotency-Key get their own messages', async () => {
  const acme = await send(a, 'shared-key');
  const eu = await send(b, 'shared-key', email(), 'acme/eu');
  assert.equal(acme.statusCode, 202);
  assert.equal(eu.statusCode, 202, eu.body);
  assert.equal(eu.headers['idempotent-replayed'], undefined);
  assert.notEqual(eu.json().id, acme.json().id);
  // A key that, glued to the tenant with "/", would spell the other pair is still its own.
  const glued = await send(a, 'eu/shared-key');
  assert.equal(glued.statusCode, 202);
  assert.notEqual(glued.json().id, eu.json().id);
  assert.equal((await send(b, 'shared-key', email(), 'acme/eu')).json().id, eu.json().id);
});

test('the same key sent to two replicas at once is produced once', async () => {
  for (let round = 0; round < 5; round++) {
    const key = `race-${round}`;
    const answers = await Promise.all([send(a, key), send(b, key), send(a, key), send(b, key)]);
    for (const r of answers) assert.ok([202, 409].includes(r.statusCode), `${r.statusCode} ${r.body}`);
    const ids = new Set(answers.filter((r) => r.statusCode === 202).map((r) => r.json().id));
    assert.equal(ids.size, 1, `one id for ${key}: ${[...ids].join(', ')}`);
    const conflicted = answers.find((r) => r.statusCode === 409);
    if (conflicted) assert.ok(Number(conflicted.headers['retry-after']) >= 1, 'a 409 says when to retry');
    // Every answer agrees once the winner is accepted.
    const settled = await send(b, key);
    assert.equal(settled.statusCode, 202);
    assert.equal(settled.json().id, [...ids][0]);
    await h.caughtUp();
    assert.equal(recordsWithKey(key).length, 1, `${key} produced once`);
  }
});

test('after every replica restarted, a replay still returns the original id', async () => {
  const { id } = (await send(a, 'order-3')).json();
  await a.close();
  await b.close();
  const offset = await h.endOffset(Topics.requested);
  a = await h.ingest();
  b = await h.ingest();
  const again = await send(b, 'order-3');
  assert.equal(again.statusCode, 202);
  assert.equal(again.json().id, id);
  assert.equal(await h.endOffset(Topics.requested), offset);
});

/** Writes the claim a replica leaves when it dies between claiming a key and producing. */
async function leavePendingClaim(key: string, body: EmailBody, messageId: string, leaseUntil: number): Promise<void> {
  const now = Date.now();
  const { record } = normalizeEmail(body, { tenant: 'acme', messageId, acceptedAt: new Date(now - 60_000).toISOString(), idempotencyKey: key }, { maxAttachmentBytes: 1e6, maxAttachmentsTotalBytes: 1e6, maxMessageBytes: 1e6 });
  const claim: IdempotencyClaim = {
    messageId,
    owner: 'a-replica-that-died',
    state: 'pending',
    fingerprint: requestFingerprint(record),
    acceptedAt: record.acceptedAt,
    claimedAt: now - 60_000,
    leaseUntil,
    expiresAt: now + 86_400_000,
  };
  await producer.send({ topic: Topics.idempotency, acks: -1, messages: [{ key: claimKey('acme', key), value: JSON.stringify(claim) }] });
}

test('a claim left pending by a dead replica: 409 while its lease runs, then completed with the same id', async () => {
  const body = email({ subject: 'crash window' });
  const deadId = '01900000-0000-7000-8000-00000000dead';
  await leavePendingClaim('order-4', body, deadId, Date.now() + 60_000);
  const offset = await h.endOffset(Topics.requested);
  const busy = await send(a, 'order-4', body);
  assert.equal(busy.statusCode, 409);
  assert.equal(busy.json().error.code, 'IDEMPOTENCY_IN_PROGRESS');
  assert.equal(await h.endOffset(Topics.requested), offset, 'nothing produced while the lease runs');

  const lapsedId = '01900000-0000-7000-8000-0000000dead2';
  await leavePendingClaim('order-5', body, lapsedId, Date.now() - 1);
  const completed = await send(b, 'order-5', body);
  assert.equal(completed.statusCode, 202);
  assert.equal(completed.json().id, lapsedId, 'the id the dead replica had promised nobody, now queued');
  const [record] = await h.waitForKey(Topics.requested, lapsedId);
  assert.equal(record.value.subject, 'crash window');
  const replay = await send(a, 'order-5', body);
  assert.equal(replay.json().id, lapsedId);
  assert.equal(replay.headers['idempotent-replayed'], 'true');
  await h.caughtUp();
  assert.equal(recordsWithKey('order-5').length, 1);
});
