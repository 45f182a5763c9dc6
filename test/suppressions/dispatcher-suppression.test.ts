/**
 * The suppression list in the dispatcher, through the embedded broker and a scripted SMTP sink:
 * suppressed recipients get a `suppressed` event and no SMTP while the others of the same
 * record are sent; list entries apply to their list only; the feeder turns a recipient-class
 * 550 into a suppression, never an expired message or an infrastructure bounce; a weaker
 * event does not replace a stronger entry; all of it holds across a restart.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Topics } from '../../shared/topics.js';
import { EmailEventContract, type EmailEvent } from '../../shared/contracts/email-event.js';
import { SUPPRESSION_VERSION, SuppressionContract, suppressionKey, type Suppression } from '../../shared/contracts/suppression.js';
import { waitFor } from '../helpers/broker.js';
import { startHarness, type Harness } from '../dispatcher/dispatcher-harness.js';
import { recordFor } from '../dispatcher/fleet-support.js';

function entry(tenant: string, address: string, reason: Suppression['reason'], more: Partial<Suppression> = {}): Suppression {
  return { schemaVersion: SUPPRESSION_VERSION, tenant, address, reason, createdAt: new Date().toISOString(), ...more };
}

async function suppress(h: Harness, ...entries: Suppression[]): Promise<void> {
  await h.producer.send({ topic: Topics.suppressions, acks: -1, messages: entries.map((s) => ({ key: suppressionKey(s.tenant, s.address, s.list), value: SuppressionContract.encode(s) })) });
}

function suppressedOf(h: Harness, messageId: string): EmailEvent[] {
  return h.events('suppressed').filter((e) => e.messageId === messageId);
}

test('suppressed recipients get a suppressed event and no SMTP; the other recipient is sent; tenants and lists apart; after a restart too', async (t) => {
  const h = await startHarness();
  t.after(() => h.close());
  await suppress(
    h,
    entry('tenant-a', 'ann@example.org', 'hard-bounce'),
    entry('tenant-a', 'cat@example.org', 'unsubscribe', { list: 'news' }),
    entry('tenant-a', 'dan@example.org', 'soft-bounce', { expiresAt: new Date(Date.now() - 1000).toISOString() }),
  );
  // The index is live: it has the entries without a restart.
  await waitFor(() => (h.dispatcher.suppressions?.size === 3 ? true : undefined), 15_000, 'the index has the entries');
  const r1 = recordFor(['ann@example.org', 'bob@example.org', 'dan@example.org']);
  const r2 = recordFor(['ann@example.org'], { tenant: 'tenant-b' });
  const r3 = recordFor(['cat@example.org'], { listId: 'news' });
  const r4 = recordFor(['cat@example.org'], { listId: 'promo' });
  const r5 = recordFor(['ann@example.org'], { listId: 'news' });
  await h.produce([r1, r2, r3, r4, r5]);
  await waitFor(() => (suppressedOf(h, r1.messageId).length === 1 && h.events('sent').filter((e) => [r1, r2, r4].some((r) => r.messageId === e.messageId)).length === 3 && suppressedOf(h, r3.messageId).length === 1 && suppressedOf(h, r5.messageId).length === 1 ? true : undefined), 15_000, 'outcomes');
  const [s1] = suppressedOf(h, r1.messageId);
  assert.deepEqual(s1.recipients, ['ann@example.org']);
  assert.equal(s1.category, 'hard-bounce');
  assert.equal(s1.attempt, 1);
  const sent1 = h.events('sent').find((e) => e.messageId === r1.messageId)!;
  assert.deepEqual(sent1.recipients?.sort(), ['bob@example.org', 'dan@example.org'], 'expired soft bounce no longer applies');
  assert.equal(suppressedOf(h, r2.messageId).length, 0, 'tenant-b is not tenant-a');
  assert.equal(suppressedOf(h, r3.messageId)[0].category, 'unsubscribe');
  assert.equal(suppressedOf(h, r3.messageId)[0].listId, 'news');
  assert.equal(suppressedOf(h, r4.messageId).length, 0, 'unsubscribed from news, not from promo');
  assert.equal(h.sink.messages.filter((m) => m.to.includes('cat@example.org')).length, 1);
  assert.ok(h.sink.messages.every((m) => !(m.to.includes('ann@example.org') && m.from === r1.envelope.from && m.raw.includes(r1.messageId))));
  assert.equal(h.sink.rcptAttempts.get('ann@example.org'), 1, 'only tenant-b\'s message reached RCPT TO for ann');
  assert.equal(await h.metric('postline_suppressed_recipients_total', 'priority="transactional"', 'reason="hard-bounce"'), 2);
  assert.equal(await h.metric('postline_suppression_list_entries'), 3);

  // A retry of a suppressed recipient is held back as well, and so is everything after a restart.
  await h.restart();
  const r6 = recordFor(['ann@example.org'], { attempt: 3 });
  await h.produce([r6]);
  const [s6] = await waitFor(() => (suppressedOf(h, r6.messageId).length ? suppressedOf(h, r6.messageId) : undefined), 15_000, 'suppressed after restart');
  assert.equal(s6.attempt, 3);
  assert.equal(h.sink.rcptAttempts.get('ann@example.org'), 1);
});

test('the feeder: a recipient-class 550 suppresses the address for the next message; infrastructure bounces, expired and weaker events do not', async (t) => {
  const h = await startHarness({
    script: (rcpt) =>
      rcpt.startsWith('gone')
        ? { code: 550, message: '5.1.1 <gone@example.org>: Recipient address rejected: User unknown' }
        : rcpt.startsWith('blocked')
          ? { code: 554, message: '5.7.1 Service unavailable; client host blocked using zen.spamhaus.org' }
          : 250,
  });
  t.after(() => h.close());
  const first = recordFor(['gone@example.org', 'blocked@example.org', 'ok@example.org']);
  await h.produce([first]);
  await h.waitForEvents(2, 'bounced');
  const second = recordFor(['gone@example.org', 'blocked@example.org']);
  // The feeder writes the suppression; the dispatcher's live index reads it.
  await waitFor(() => h.dispatcher.suppressions?.isSuppressed('tenant-a', 'gone@example.org', undefined, Date.now()), 20_000, 'gone@ suppressed');
  assert.equal(h.dispatcher.suppressions?.isSuppressed('tenant-a', 'blocked@example.org', undefined, Date.now()), undefined, 'a blocklisted IP says nothing about the address');
  await h.produce([second]);
  await h.waitForEvents(1, 'suppressed');
  const s = h.events('suppressed')[0];
  assert.deepEqual(s.recipients, ['gone@example.org']);
  assert.equal(s.category, 'hard-bounce');
  assert.equal(await h.metric('postline_suppressions_written_total', 'reason="hard-bounce"'), 1);

  // Events the feeder must not turn into suppressions, and a weaker one after a complaint.
  const base = { schemaVersion: 1 as const, tenant: 'tenant-a', stage: 'test', at: new Date().toISOString() };
  const events: EmailEvent[] = [
    { ...base, eventId: 'x1', type: 'expired', messageId: 'm-x1', recipients: ['late@example.org'], reason: 'max age' },
    { ...base, eventId: 'x2', type: 'bounced', messageId: 'm-x2', recipients: ['infra@example.org'], bounceClass: 'infrastructure', category: 'blocklisted-ip', via: 'dsn' },
    { ...base, eventId: 'x3', type: 'complained', messageId: 'm-x3', recipients: ['angry@example.org'], category: 'abuse', via: 'arf' },
    { ...base, eventId: 'x4', type: 'unsubscribed', messageId: 'm-x4', recipients: ['angry@example.org'], via: 'one-click' },
    { ...base, eventId: 'x5', type: 'bounced', messageId: 'm-x5', recipients: ['full@example.org'], bounceClass: 'recipient', category: 'mailbox-full', via: 'dsn' },
  ];
  await h.producer.send({ topic: Topics.events, acks: -1, messages: events.map((e) => ({ key: e.messageId, value: EmailEventContract.encode(e) })) });
  const index = h.dispatcher.suppressions!;
  await waitFor(() => index.isSuppressed('tenant-a', 'full@example.org', undefined, Date.now()), 20_000, 'the soft bounce is suppressed');
  // Events are handled in parallel across partitions: wait until the feeder is past all of them.
  await waitFor(() => index.isSuppressed('tenant-a', 'angry@example.org', undefined, Date.now())?.reason === 'complaint' || undefined, 20_000, 'the complaint is suppressed');
  const probe = recordFor(['late@example.org', 'infra@example.org', 'angry@example.org', 'full@example.org']);
  await h.produce([probe]);
  await waitFor(() => (h.events('sent').some((e) => e.messageId === probe.messageId) ? true : undefined), 15_000, 'probe sent');
  const held = h.events('suppressed').filter((e) => e.messageId === probe.messageId);
  const byAddr = new Map(held.flatMap((e) => (e.recipients ?? []).map((r) => [r, e.category] as const)));
  assert.equal(byAddr.get('angry@example.org'), 'complaint', 'the unsubscribe did not replace the complaint');
  assert.equal(byAddr.get('full@example.org'), 'soft-bounce');
  assert.equal(byAddr.has('late@example.org'), false, 'expired never suppresses');
  assert.equal(byAddr.has('infra@example.org'), false, 'an infrastructure bounce never suppresses');
  assert.deepEqual(h.events('sent').find((e) => e.messageId === probe.messageId)?.recipients?.sort(), ['infra@example.org', 'late@example.org']);
  assert.ok(h.sink.messagesTo('late@example.org').length >= 1);
});
