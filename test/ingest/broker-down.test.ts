/**
 * Never a 202 for something not durably queued: with the broker stopped every send is
 * answered 503 within the produce timeout; once it is back, sends are accepted again and a
 * keyed request that failed is completed once, under its original claim.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Topics } from '../../shared/topics.js';
import { waitFor } from '../helpers/broker.js';
import { IngestHarness, auth, email } from './ingest-harness.js';
import type { IngestHandle } from '../../services/ingest/main.js';

let h: IngestHarness;
let ingest: IngestHandle;

before(async () => {
  h = await IngestHarness.start();
  ingest = await h.ingest({ 'ingest.produceTimeoutMs': 1000, 'ingest.idempotencyLeaseMs': 2000 });
});
after(() => h.stop());

const post = (headers: Record<string, string> = {}) => ingest.app.inject({ method: 'POST', url: '/v1/emails', headers: { ...auth('acme'), ...headers }, payload: email() });

test('broker stopped → 503 (never 202); broker back → 202 again', async () => {
  assert.equal((await post()).statusCode, 202);
  await h.stopBroker();

  const started = Date.now();
  const plain = await post();
  assert.equal(plain.statusCode, 503, plain.body);
  assert.equal(plain.json().error.code, 'UNAVAILABLE');
  assert.ok(Date.now() - started < 5000, 'answered within the produce timeout, not after kafkajs gave up');
  const batch = await ingest.app.inject({ method: 'POST', url: '/v1/emails/batch', headers: auth('acme'), payload: { messages: [email(), email()] } });
  assert.equal(batch.statusCode, 503);
  assert.deepEqual(batch.json().results.map((r: { status: number }) => r.status), [503, 503]);
  const keyed = await post({ 'idempotency-key': 'during-outage' });
  assert.equal(keyed.statusCode, 503);

  await h.restartBroker();
  const back = await waitFor(async () => {
    const r = await post();
    assert.ok([202, 503].includes(r.statusCode), r.body);
    return r.statusCode === 202 ? r : undefined;
  }, 30_000, 'a 202 after the broker came back');
  await h.collect();
  await h.waitForKey(Topics.requested, back.json().id);

  // The keyed request is answered 409 (its claim may still be produced late) or completed.
  const retried = await waitFor(async () => {
    const r = await post({ 'idempotency-key': 'during-outage' });
    assert.ok([202, 409, 503].includes(r.statusCode), r.body);
    return r.statusCode === 202 ? r : undefined;
  }, 30_000, 'the keyed retry to be accepted');
  const again = await post({ 'idempotency-key': 'during-outage' });
  assert.equal(again.json().id, retried.json().id);
  await h.caughtUp();
  const queued = (h.records.get(Topics.requested) ?? []).filter((r) => r.value.idempotencyKey === 'during-outage');
  assert.deepEqual(queued.map((r) => r.key), [retried.json().id], 'queued exactly once, under the answered id');
});
