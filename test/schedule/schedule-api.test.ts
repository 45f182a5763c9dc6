/**
 * Scheduled send through the API, end to end on real parts: ingest (inject) → email.scheduled →
 * the scheduler → the request lane; and DELETE /v1/emails/:id forwarded from ingest to the scheduler.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { waitFor } from '../helpers/broker.js';
import { TopicReader } from '../helpers/topic-reader.js';
import { Topics } from '../../shared/topics.js';
import type { EmailEvent } from '../../shared/contracts/email-event.js';
import type { EmailRequested } from '../../shared/contracts/email-requested.js';
import { startScheduler } from '../../services/scheduler/main.js';
import { IngestHarness, auth, email } from '../ingest/ingest-harness.js';
import type { IngestHandle } from '../../services/ingest/main.js';

let h: IngestHarness;
let ingest: IngestHandle;
let scheduler: Awaited<ReturnType<typeof startScheduler>>;
let reader: TopicReader;

before(async () => {
  h = await IngestHarness.start();
  const overrides = { 'schedule.port': 0, 'schedule.host': '127.0.0.1', 'schedule.horizonMs': 1000 };
  scheduler = await startScheduler(h.config(overrides), { logger: pino({ level: 'silent' }), ops: false });
  ingest = await h.ingest({ ...overrides, 'schedule.schedulerUrl': scheduler.cancelAddress });
  reader = await new TopicReader(h.broker.bootstrap, [Topics.scheduled, Topics.requestedFor('transactional'), Topics.events]).start();
});
after(async () => {
  await reader.stop();
  await scheduler.close();
  await h.stop();
});

const send = (body: Record<string, unknown>, tenant: 'acme' | 'acme/eu' = 'acme') => ingest.app.inject({ method: 'POST', url: '/v1/emails', headers: auth(tenant), payload: body });
const cancel = (id: string, tenant: 'acme' | 'acme/eu') => ingest.app.inject({ method: 'DELETE', url: `/v1/emails/${encodeURIComponent(id)}`, headers: auth(tenant) });
const onLane = (id: string) => reader.records.filter((r) => r.topic === Topics.requestedFor('transactional') && r.message.key?.toString() === id);
const eventsOf = (id: string) => reader.json<EmailEvent>(Topics.events).filter((e) => e.messageId === id);

test('POST /v1/emails with sendAt: 202 once on email.scheduled with accepted and scheduled events; released to the request lane within 1 s of sendAt', async () => {
  const sendAt = new Date(Date.now() + 2500);
  // An offset other than Z: the same instant.
  const local = new Date(sendAt.getTime() + 3600_000).toISOString().replace('Z', '+01:00');
  const res = await send(email({ sendAt: local }));
  assert.equal(res.statusCode, 202, res.body);
  const { id } = res.json<{ id: string }>();
  await waitFor(() => eventsOf(id).some((e) => e.type === 'scheduled'), 10_000, 'scheduled event');
  const scheduled = eventsOf(id).find((e) => e.type === 'scheduled')!;
  assert.equal(scheduled.nextAttemptAt, sendAt.toISOString());
  assert.ok(eventsOf(id).some((e) => e.type === 'accepted'));
  const parked = await waitFor(() => reader.json<EmailRequested>(Topics.scheduled).find((r) => r.messageId === id), 10_000, 'parked on email.scheduled');
  assert.equal(parked.sendAt, sendAt.toISOString());
  assert.equal(onLane(id).length, 0, 'not on the request lane before sendAt');
  const [r] = await waitFor(() => (onLane(id).length ? onLane(id) : undefined), 15_000, 'released');
  assert.ok(r.receivedAt >= sendAt.getTime(), `released ${sendAt.getTime() - r.receivedAt} ms early`);
  assert.ok(r.receivedAt - sendAt.getTime() < 1000, `released ${r.receivedAt - sendAt.getTime()} ms late`);
});

test('sendAt in the past (or within a second) is sent now; later than 30 days, or without an offset, is refused', async () => {
  const past = await send(email({ sendAt: new Date(Date.now() - 60_000).toISOString() }));
  assert.equal(past.statusCode, 202);
  const { id } = past.json<{ id: string }>();
  await waitFor(() => onLane(id).length === 1, 10_000, 'sent at once');
  assert.equal(eventsOf(id).some((e) => e.type === 'scheduled'), false);
  const far = await send(email({ sendAt: new Date(Date.now() + 31 * 86_400_000).toISOString() }));
  assert.equal(far.statusCode, 400);
  assert.equal(far.json<{ error: { fields: Array<{ field: string }> } }>().error.fields[0].field, 'sendAt');
  const naive = await send(email({ sendAt: '2030-01-01T09:00:00' }));
  assert.equal(naive.statusCode, 400);
});

test('the batch API schedules items with a sendAt and sends the others now', async () => {
  const sendAt = new Date(Date.now() + 60_000).toISOString();
  const res = await ingest.app.inject({ method: 'POST', url: '/v1/emails/batch', headers: auth('acme'), payload: { messages: [email({ sendAt }), email()] } });
  assert.equal(res.statusCode, 202, res.body);
  const [later, now] = res.json<{ results: Array<{ id: string }> }>().results.map((r) => r.id);
  await waitFor(() => onLane(now).length === 1 && reader.json<EmailRequested>(Topics.scheduled).some((r) => r.messageId === later), 10_000, 'one sent, one parked');
  assert.equal(onLane(later).length, 0);
});

test('DELETE /v1/emails/:id: acme cannot cancel acme/eu’s message (404); its owner can (200), once; after release it is 409', async () => {
  const res = await send(email({ sendAt: new Date(Date.now() + 3000).toISOString() }), 'acme/eu');
  const { id } = res.json<{ id: string }>();
  await waitFor(() => scheduler.scheduled.book.has(id), 10_000, 'held by the scheduler');
  const foreign = await cancel(id, 'acme');
  assert.equal(foreign.statusCode, 404, foreign.body);
  const own = await cancel(id, 'acme/eu');
  assert.equal(own.statusCode, 200, own.body);
  assert.deepEqual(own.json(), { id, status: 'cancelled', cancelled: ['scheduled'] });
  await waitFor(() => eventsOf(id).some((e) => e.type === 'cancelled'), 10_000, 'cancelled event');
  // Without a read API ingest cannot tell a cancelled message from an unknown one: 404.
  assert.equal((await cancel(id, 'acme/eu')).statusCode, 404);
  assert.equal((await cancel('no-such-message', 'acme')).statusCode, 404);

  const soon = (await send(email({ sendAt: new Date(Date.now() + 1200).toISOString() }), 'acme/eu')).json<{ id: string }>().id;
  await waitFor(() => onLane(soon).length === 1, 10_000, 'released');
  const late = await cancel(soon, 'acme/eu');
  assert.equal(late.statusCode, 409, late.body);
  assert.equal(late.json<{ error: { code: string } }>().error.code, 'TOO_LATE');
  // Past the first one's sendAt: never released.
  await waitFor(() => eventsOf(soon).length > 0 && Date.now() > Date.parse(eventsOf(id).find((e) => e.type === 'scheduled')!.nextAttemptAt!) + 500, 10_000, 'past its sendAt');
  assert.equal(onLane(id).length, 0);
});
