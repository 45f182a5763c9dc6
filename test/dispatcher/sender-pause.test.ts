/**
 * Sending-domain pauses across dispatcher replicas (issue 13): two dispatchers in the same
 * groups read the same email.events; complaints of a tenant's sending domain past the threshold
 * pause it on both, its mail is deferred (SENDER_PAUSED, to a retry tier) instead of sent, and a
 * resume on one replica — an event — holds on the other too.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { EmailEventContract, type EmailEvent } from '../../shared/contracts/email-event.js';
import { Topics } from '../../shared/topics.js';
import { startDispatcher, type RunningDispatcher } from '../../services/dispatcher/main.js';
import type { TrafficShaper } from '../../services/dispatcher/shaping/shaper.js';
import { waitFor } from '../helpers/broker.js';
import { startHarness, type Harness } from './dispatcher-harness.js';
import { recordFor } from './fleet-support.js';

let h: Harness;
let second: RunningDispatcher;
const shaperOf = (d: RunningDispatcher): TrafficShaper => d.shaper as TrafficShaper;

before(async () => {
  h = await startHarness({}, { 'dispatcher.shaping.senderMinSample': 20, 'dispatcher.shaping.senderComplaintRate': 0.05 });
  second = await startDispatcher(h.config, { logger: pino({ level: 'silent' }), ops: false });
});
after(async () => {
  await second?.close();
  await h?.close();
});

/** Events of another stage (the renderer's sends, the inbound service's complaints), as they land on email.events. */
async function feed(events: Array<Partial<EmailEvent>>): Promise<void> {
  const full = events.map((e) => ({ schemaVersion: 1 as const, eventId: randomUUID(), at: new Date().toISOString(), stage: 'test', messageId: randomUUID(), tenant: 'acme', ...e }) as EmailEvent);
  await h.producer.send({ topic: Topics.events, acks: -1, messages: full.map((e) => ({ key: e.messageId, value: EmailEventContract.encode(e) })) });
}

test('complaints past the threshold pause the sending domain on every replica; its mail is deferred, not sent; a resume on one replica holds on both', async () => {
  await feed([...Array.from({ length: 30 }, () => ({ type: 'sent' as const, fromDomain: 'news.example' })), ...Array.from({ length: 2 }, () => ({ type: 'complained' as const, fromDomain: 'news.example', category: 'abuse', via: 'arf' }))]);
  await waitFor(() => [h.dispatcher, second].every((d) => shaperOf(d).senderPaused('acme', 'news.example')) || undefined, 20_000, 'the sending domain paused on both replicas');
  assert.equal(shaperOf(h.dispatcher).senderPaused('acme/eu', 'news.example'), false, 'another tenant is not paused');
  const paused = await waitFor(() => h.events('paused').find((e) => e.tenant === 'acme'), 10_000, 'a paused event');
  assert.deepEqual({ messageId: paused.messageId, reason: paused.reason, fromDomain: paused.fromDomain, scope: paused.ops?.scope }, { messageId: '', reason: 'complaint-rate', fromDomain: 'news.example', scope: 'sender' });

  const held = recordFor(['someone@example.org'], { tenant: 'acme', fromDomain: 'news.example' });
  const other = recordFor(['someone@example.org'], { tenant: 'acme/eu', fromDomain: 'news.example' });
  await h.produce([held, other]);
  const deferred = await waitFor(() => h.events('deferred').find((e) => e.messageId === held.messageId), 15_000, 'the deferred event');
  assert.match(deferred.reason ?? '', /^SENDER_PAUSED: /);
  await waitFor(() => h.retries().find((r) => r.messageId === held.messageId), 10_000, 'the retry record');
  const sent = await waitFor(() => h.events('sent').find((e) => e.messageId === other.messageId), 15_000, 'acme/eu\'s message sent');
  assert.equal(sent.fromDomain, 'news.example', 'delivery events carry the sending domain (the rates count them)');
  assert.equal(h.sink.messages.filter((m) => m.raw.toString().includes(held.messageId)).length, 0, 'nothing sent for the paused domain');
  assert.equal(h.events('failed').filter((e) => e.messageId === held.messageId).length, 0);

  // The operator resumes on the second replica (POST /v1/senders/acme/news.example/resume calls this).
  assert.ok(shaperOf(second).resumeSender('acme', 'news.example'));
  await waitFor(() => !shaperOf(h.dispatcher).senderPaused('acme', 'news.example') || undefined, 20_000, 'the resume applied by the first replica');
  const resumed = await waitFor(() => h.events('resumed').find((e) => e.tenant === 'acme'), 10_000, 'a resumed event');
  assert.equal(resumed.reason, 'command');
  const later = recordFor(['later@example.org'], { tenant: 'acme', fromDomain: 'news.example' });
  await h.produce([later]);
  await waitFor(() => h.events('sent').find((e) => e.messageId === later.messageId), 15_000, 'sent after the resume');
});
