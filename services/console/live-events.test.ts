/**
 * LiveEvents, the overview's state: counts per minute and type, the feed and per-tag progress
 * are kept per tenant — `acme` and `acme/eu` (one a prefix of the other) never see each
 * other's events — minutes older than the history are dropped, and every applied event is
 * emitted for server push with its tenant.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LiveEvents, type FeedItem } from './live-events.js';
import type { EmailEvent } from '../../shared/contracts/email-event.js';

const T0 = Date.parse('2026-12-03T19:00:10Z');
let n = 0;
const ev = (tenant: string, type: EmailEvent['type'], atMs: number, extra: Partial<EmailEvent> = {}): EmailEvent => ({
  schemaVersion: 1,
  eventId: `e${++n}`,
  type,
  messageId: `m-${tenant}-${n}`,
  tenant,
  at: new Date(atMs).toISOString(),
  stage: 'test',
  ...extra,
});

test('counts per minute and type, per tenant: acme and acme/eu stay apart', () => {
  const live = new LiveEvents({ historyMinutes: 60 });
  live.apply(ev('acme', 'accepted', T0));
  live.apply(ev('acme', 'sent', T0 + 1000));
  live.apply(ev('acme', 'sent', T0 + 61_000));
  live.apply(ev('acme/eu', 'bounced', T0));
  const rows = live.minutes('acme', T0 + 61_000, 3);
  assert.deepEqual(rows.map((r) => r.minute), ['2026-12-03T19:01:00.000Z', '2026-12-03T19:00:00.000Z', '2026-12-03T18:59:00.000Z']);
  assert.deepEqual(rows.map((r) => r.counts), [{ sent: 1 }, { accepted: 1, sent: 1 }, {}]);
  assert.deepEqual(live.totals('acme'), { accepted: 1, sent: 2 });
  assert.deepEqual(live.totals('acme/eu'), { bounced: 1 });
  assert.deepEqual(live.recent('acme/eu').map((f) => f.type), ['bounced']);
  assert.deepEqual(live.recent('acme').map((f) => f.type), ['sent', 'sent', 'accepted'], 'newest first');
  assert.deepEqual(live.totals('globex'), {});
});

test('minutes past the history are dropped; ops events (no message) are not counted', () => {
  const live = new LiveEvents({ historyMinutes: 5 });
  live.apply(ev('acme', 'sent', T0));
  live.apply(ev('acme', 'sent', T0 + 10 * 60_000));
  live.apply(ev('acme', 'paused', T0 + 10 * 60_000, { messageId: '' }));
  assert.deepEqual(live.totals('acme'), { sent: 1 });
  assert.equal(live.recent('acme').length, 2);
});

test('per-tag progress and the feed item carry the SMTP reply; each event is emitted with its tenant', () => {
  const live = new LiveEvents({ historyMinutes: 60, recentPerTenant: 2 });
  const seen: Array<[string, FeedItem]> = [];
  live.on('event', (tenant: string, item: FeedItem) => seen.push([tenant, item]));
  live.apply(ev('acme', 'accepted', T0, { tags: ['launch'] }));
  live.apply(ev('acme', 'deferred', T0 + 1, { tags: ['launch'], smtp: { code: 451, enhanced: '4.7.1', message: 'try later' } }));
  live.apply(ev('acme', 'sent', T0 + 2, { tags: ['launch', 'eu'] }));
  assert.deepEqual(
    live.tags('acme').map((t) => [t.tag, t.counts]),
    [
      ['launch', { accepted: 1, deferred: 1, sent: 1 }],
      ['eu', { sent: 1 }],
    ].sort((a, b) => (a[0] < b[0] ? -1 : 1)),
  );
  assert.equal(live.recent('acme').length, 2, 'the feed is bounded');
  assert.equal(seen[1][0], 'acme');
  assert.equal(seen[1][1].detail, '451 4.7.1 try later');
  assert.deepEqual(live.tags('acme/eu'), []);
});
