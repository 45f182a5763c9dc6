/**
 * Duplicate suppression: a dispatch record seen again — produced twice upstream, redelivered to
 * a restarted dispatcher — reaches the relay once. Outcome events carry deterministic ids.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '../helpers/broker.js';
import { startHarness } from './dispatcher-harness.js';
import { recordFor } from './fleet-support.js';

test('a record produced twice (a stage repeating its produce after a crash) is delivered once', async (t) => {
  const h = await startHarness({ script: () => ({ dataCode: 250, delayMs: 200 }) }, { 'dispatcher.concurrencyTransactional': 8 });
  t.after(() => h.close());
  const records = Array.from({ length: 4 }, (_, i) => recordFor([`r${i}@example.org`]));
  // Each twice, the copy right behind the original: handled concurrently, and once more later.
  await h.produce(records.flatMap((r) => [r, r]));
  await h.waitForEvents(4, 'sent');
  await waitFor(async () => (await h.metric('postline_dispatch_duplicates_skipped_total', 'priority="transactional"')) === 4, 10_000, 'four skipped copies');
  await h.produce([records[0]]);
  await waitFor(async () => (await h.metric('postline_dispatch_duplicates_skipped_total')) === 5, 10_000, 'the late copy skipped');
  assert.equal(h.sink.messages.length, 4);
  assert.equal(h.events('sent').length, 4);
});

test('a retry of the same message is new work; a repeat of the first attempt is not', async (t) => {
  const h = await startHarness({ script: (rcpt, ctx) => (rcpt.startsWith('later') && ctx.attempt === 1 ? 451 : 250) });
  t.after(() => h.close());
  const record = recordFor(['now@example.org', 'later@example.org']);
  await h.produce([record]);
  const [retry] = await waitFor(() => (h.retries().length ? h.retries() : undefined), 10_000, 'retry record');
  assert.deepEqual(retry.envelope.to, ['later@example.org']);
  await h.produce([record, { ...retry, notBefore: undefined }]);
  await h.waitForEvents(2, 'sent');
  await waitFor(async () => (await h.metric('postline_dispatch_duplicates_skipped_total')) === 2, 10_000, 'the repeated first attempt skipped');
  assert.deepEqual(h.sink.messages.map((m) => m.to).sort(), [['later@example.org'], ['now@example.org']]);
  assert.equal(h.retries().length, 1, 'the repeat did not defer again');
});

test('a dispatcher that gets handled records again after a restart does not resend them (outcomes read back from email.events)', async (t) => {
  const h = await startHarness();
  t.after(() => h.close());
  const records = Array.from({ length: 20 }, (_, i) => recordFor([`u${i}@example.org`]));
  await h.produce(records);
  await h.waitForEvents(20, 'sent');
  // A new consumer group reads every record again: what a crash before the commit does to the uncommitted ones.
  await h.restart({ 'dispatcher.groupId': `${h.config.dispatcher.groupId}-again` });
  await waitFor(async () => (await h.metric('postline_dispatch_duplicates_skipped_total')) === 20, 20_000, 'all 20 recognised as handled');
  assert.equal(h.sink.messages.length, 20);
  const sent = h.events('sent');
  assert.equal(sent.length, 20, 'no second sent event either');

  // Without the start-up read the same situation delivers everything twice (what the read prevents).
  await h.restart({ 'dispatcher.groupId': `${h.config.dispatcher.groupId}-third`, 'dispatcher.dedupe.seedWindowMs': 0 });
  await h.sink.waitForMessages(40, 20_000);
  const again = await h.waitForEvents(40, 'sent');
  // The repeat publishes outcome events under the same deterministic ids: consumers can drop them.
  const ids = (list: typeof sent): string[] => list.map((e) => e.eventId).sort();
  assert.deepEqual(ids(again.slice(20)), ids(sent));
});
