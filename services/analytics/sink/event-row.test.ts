import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EVENT_COLUMNS, toEventRow, toEventValues } from './event-row.js';
import type { EmailEvent } from '../../../shared/contracts/email-event.js';

const base: EmailEvent = { schemaVersion: 1, eventId: 'e1', type: 'sent', messageId: 'm1', tenant: 'acme', at: '2024-05-01T10:00:00.123Z', stage: 'dispatcher' };
const at = { topic: 'email.events', partition: 3, offset: '42' };

test('toEventRow: absent optional fields become empty values, measurements stay null', () => {
  const row = toEventRow(base, at);
  assert.deepEqual(
    { ...row },
    {
      event_id: 'e1', type: 'sent', message_id: 'm1', tenant: 'acme', at: '2024-05-01T10:00:00.123Z', stage: 'dispatcher',
      priority: '', recipients: [], domain: '', pool: '', attempt: 0, smtp_code: 0, smtp_enhanced: '', smtp_message: '', smtp_host: '',
      reason: '', next_attempt_at: null, latency_ms: null, connection_reused: null, tags: [], accepted_at: null,
      tls: '', source_ip: '', site: '', bounce_category: '', bounce_class: '', via: '', from_domain: '', list_id: '', dkim_domain: '', dkim_selector: '',
      engagement_first: 0, engagement_machine: 0, machine_reason: '', link_index: null, url: '', client_ip: '', user_agent: '',
      kafka_topic: 'email.events', kafka_partition: 3, kafka_offset: '42',
    },
  );
});

test('toEventRow: every field of a full event lands in its column', () => {
  const full: EmailEvent = {
    ...base,
    priority: 'bulk', recipients: ['a@Example.org'], domain: 'Example.ORG', pool: 'marketing', attempt: 3,
    smtp: { code: 451, enhanced: '4.7.1', message: 'later', host: 'mx.example.org' }, reason: 'greylisted',
    nextAttemptAt: '2024-05-01T10:05:00Z', latencyMs: 12.5, connectionReused: true, tags: ['t1', 't2'], acceptedAt: '2024-05-01T09:59:59Z',
  };
  const row = toEventRow(full, at);
  assert.equal(row.domain, 'example.org', 'domains are compared lower-case');
  assert.deepEqual(row.recipients, ['a@Example.org'], 'addresses are kept as given');
  assert.deepEqual([row.attempt, row.smtp_code, row.smtp_enhanced, row.smtp_message, row.smtp_host], [3, 451, '4.7.1', 'later', 'mx.example.org']);
  assert.deepEqual([row.next_attempt_at, row.latency_ms, row.connection_reused, row.accepted_at], ['2024-05-01T10:05:00Z', 12.5, true, '2024-05-01T09:59:59Z']);
});

test('toEventRow: how the message left (source address, site, TLS), the bounce category and the DKIM key', () => {
  const sent = toEventRow({ ...base, tls: 'TLSv1.3', source: '2001:db8::25', site: 'google' }, at);
  assert.deepEqual([sent.tls, sent.source_ip, sent.site, sent.bounce_category], ['TLSv1.3', '2001:db8::25', 'google', '']);
  const bounced = toEventRow({ ...base, type: 'bounced', category: 'dns', site: 'outlook' }, at);
  assert.deepEqual([bounced.bounce_category, bounced.site, bounced.tls], ['dns', 'outlook', '']);
  const rendered = toEventRow({ ...base, type: 'rendered', dkim: { domain: 'Mail.Example.COM', selector: 's2026a' } }, at);
  assert.deepEqual([rendered.dkim_domain, rendered.dkim_selector], ['mail.example.com', 's2026a'], 'signing domains are compared lower-case, selectors kept');
  assert.equal(toEventRow({ ...base, tls: 'none' }, at).tls, 'none', 'a plaintext session is recorded as such, not as absent');
});

test('toEventRow: bounce class, feedback channel, sending domain and list', () => {
  const bounced = toEventRow({ ...base, type: 'bounced', category: 'unknown-user', bounceClass: 'recipient', fromDomain: 'News.Example.COM', listId: 'Weekly-Digest' }, at);
  assert.deepEqual([bounced.bounce_category, bounced.bounce_class, bounced.via, bounced.from_domain, bounced.list_id], ['unknown-user', 'recipient', '', 'news.example.com', 'Weekly-Digest']);
  const complained = toEventRow({ ...base, type: 'complained', category: 'abuse', via: 'arf' }, at);
  assert.deepEqual([complained.bounce_category, complained.bounce_class, complained.via], ['abuse', '', 'arf']);
});

test('toEventRow: out-of-range numbers are clamped to what the columns hold', () => {
  const cases: Array<[Partial<EmailEvent>, number, number]> = [
    [{ attempt: -1 }, 0, 0],
    [{ attempt: 70_000 }, 65_535, 0],
    [{ attempt: 2.7 }, 2, 0],
    [{ smtp: { code: 5500 } }, 0, 999],
  ];
  for (const [extra, attempt, code] of cases) {
    const row = toEventRow({ ...base, ...extra }, at);
    assert.deepEqual([row.attempt, row.smtp_code], [attempt, code], JSON.stringify(extra));
  }
});

test('toEventValues: positional values in EVENT_COLUMNS order', () => {
  const row = toEventRow({ ...base, tags: ['x'] }, at);
  const values = toEventValues(row);
  assert.equal(values.length, EVENT_COLUMNS.length);
  EVENT_COLUMNS.forEach((c, i) => assert.deepEqual(values[i], row[c], c));
});

test('toEventRow: an open or click keeps what the tracker saw', () => {
  const row = toEventRow({ ...base, type: 'clicked', engagement: { first: true, machine: true, machineReason: 'click-burst', linkIndex: 2, url: 'https://x.org/a', ip: '203.0.113.0', userAgent: 'UA' } }, at);
  assert.deepEqual(
    [row.engagement_first, row.engagement_machine, row.machine_reason, row.link_index, row.url, row.client_ip, row.user_agent],
    [1, 1, 'click-burst', 2, 'https://x.org/a', '203.0.113.0', 'UA'],
  );
});
