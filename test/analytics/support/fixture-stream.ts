/**
 * A small hand-written event stream whose every answer is known: the timeline of each message,
 * the counts, rates and latencies per domain, priority, pool and tag. Times are relative to
 * `t0` (a recent whole hour, so retention never drops them).
 *
 * acme   m1  alice@gmail.com + bob@example.org, transactional, pool transactional, tag welcome
 *            accepted t0, rendered +100 ms (DKIM acme.com s2026), gmail deferred 451 (attempt 1) +1 s,
 *            example.org sent +1.5 s (relay, TLSv1.2), gmail sent (attempt 2) +62 s, alice opened +10 min
 *        m2  carol@gmail.com, bulk, pool marketing, tag newsletter
 *            accepted +2 min, rendered, bounced 550 5.1.1 at +2 min 2 s
 *        m3  dave@yahoo.com, critical, pool transactional, tag receipt
 *            accepted +5 min, rendered, sent +800 ms
 *        m4  erin@yahoo.com, bulk, pool marketing, tag newsletter
 *            accepted +20 min, rendered, deferred 421 (attempt 1) +1 s, expired +80 min
 * globex m1  (same id, other tenant) frank@gmail.com: accepted +30 min, rendered, sent +300 ms
 *        g2  gina@gmail.com: accepted +31 min, rendered, bounced 550
 *
 * Sites and source addresses (mx route): gmail.com is site google, yahoo.com site yahoo; acme's
 * transactional pool leaves from 192.0.2.10, its marketing pool from 192.0.2.11, globex from
 * 192.0.2.20. TLS on sent: m1 gmail TLSv1.3, m1 example.org TLSv1.2, m3 none, globex m1 TLSv1.3.
 */
import type { EmailEvent } from '../../../shared/contracts/email-event.js';

const HOUR = 3_600_000;

/** A recent whole hour, three hours back: the fixture's time zero. */
export function fixtureT0(now = Date.now()): number {
  return Math.floor(now / HOUR) * HOUR - 3 * HOUR;
}

export function fixtureEvents(t0: number): EmailEvent[] {
  let seq = 0;
  const iso = (ms: number): string => new Date(ms).toISOString();
  const e = (tenant: string, messageId: string, at: number, type: EmailEvent['type'], extra: Partial<EmailEvent> = {}): EmailEvent => ({
    schemaVersion: 1,
    eventId: `fx-${++seq}`,
    type,
    messageId,
    tenant,
    at: iso(at),
    stage: type === 'accepted' ? 'ingest' : type === 'rendered' ? 'renderer' : type === 'opened' ? 'tracker' : type === 'expired' ? 'scheduler' : 'dispatcher',
    ...extra,
  });
  // Direct (mx route) deliveries name their site and source address; example.org goes through the relay.
  const google = (source: string): Partial<EmailEvent> => ({ site: 'google', source });
  const yahoo = (source: string): Partial<EmailEvent> => ({ site: 'yahoo', source });
  const m1 = { priority: 'transactional', tags: ['welcome'] };
  const m2 = { priority: 'bulk', tags: ['newsletter'] };
  const m3 = { priority: 'critical', tags: ['receipt'] };
  const m4 = { priority: 'bulk', tags: ['newsletter'] };
  const a2 = t0 + 2 * 60_000;
  const a3 = t0 + 5 * 60_000;
  const a4 = t0 + 20 * 60_000;
  const g1 = t0 + 30 * 60_000;
  const g2 = t0 + 31 * 60_000;
  return [
    e('acme', 'm1', t0, 'accepted', { ...m1, recipients: ['alice@gmail.com', 'bob@example.org'] }),
    e('acme', 'm1', t0 + 100, 'rendered', { ...m1, recipients: ['alice@gmail.com', 'bob@example.org'], dkim: { domain: 'acme.com', selector: 's2026' } }),
    e('acme', 'm1', t0 + 1000, 'deferred', {
      ...m1, recipients: ['alice@gmail.com'], domain: 'gmail.com', pool: 'transactional', attempt: 1, acceptedAt: iso(t0), ...google('192.0.2.10'),
      smtp: { code: 451, enhanced: '4.7.1', message: 'Greylisted, try again later', host: 'mx.gmail.com' }, nextAttemptAt: iso(t0 + 61_000),
    }),
    e('acme', 'm1', t0 + 1500, 'sent', {
      ...m1, recipients: ['bob@example.org'], domain: 'example.org', pool: 'transactional', attempt: 1, acceptedAt: iso(t0),
      smtp: { code: 250, message: '2.0.0 OK', host: 'mx.example.org' }, latencyMs: 120, connectionReused: false, tls: 'TLSv1.2',
    }),
    e('acme', 'm1', t0 + 62_000, 'sent', {
      ...m1, recipients: ['alice@gmail.com'], domain: 'gmail.com', pool: 'transactional', attempt: 2, acceptedAt: iso(t0), ...google('192.0.2.10'),
      smtp: { code: 250, message: '2.0.0 OK', host: 'mx.gmail.com' }, latencyMs: 90, connectionReused: true, tls: 'TLSv1.3',
    }),
    e('acme', 'm1', t0 + 600_000, 'opened', { ...m1, recipients: ['alice@gmail.com'] }),

    e('acme', 'm2', a2, 'accepted', { ...m2, recipients: ['carol@gmail.com'] }),
    e('acme', 'm2', a2 + 50, 'rendered', { ...m2, recipients: ['carol@gmail.com'] }),
    e('acme', 'm2', a2 + 2000, 'bounced', {
      ...m2, recipients: ['carol@gmail.com'], domain: 'gmail.com', pool: 'marketing', attempt: 1, acceptedAt: iso(a2), ...google('192.0.2.11'),
      smtp: { code: 550, enhanced: '5.1.1', message: 'User unknown', host: 'mx.gmail.com' }, reason: 'recipient',
    }),

    e('acme', 'm3', a3, 'accepted', { ...m3, recipients: ['dave@yahoo.com'] }),
    e('acme', 'm3', a3 + 40, 'rendered', { ...m3, recipients: ['dave@yahoo.com'] }),
    e('acme', 'm3', a3 + 800, 'sent', {
      ...m3, recipients: ['dave@yahoo.com'], domain: 'yahoo.com', pool: 'transactional', attempt: 1, acceptedAt: iso(a3), ...yahoo('192.0.2.10'),
      smtp: { code: 250, message: 'ok', host: 'mta5.yahoo.com' }, latencyMs: 200, connectionReused: true, tls: 'none',
    }),

    e('acme', 'm4', a4, 'accepted', { ...m4, recipients: ['erin@yahoo.com'] }),
    e('acme', 'm4', a4 + 30, 'rendered', { ...m4, recipients: ['erin@yahoo.com'] }),
    e('acme', 'm4', a4 + 1000, 'deferred', {
      ...m4, recipients: ['erin@yahoo.com'], domain: 'yahoo.com', pool: 'marketing', attempt: 1, acceptedAt: iso(a4), ...yahoo('192.0.2.11'),
      smtp: { code: 421, enhanced: '4.7.0', message: 'Too many connections', host: 'mta5.yahoo.com' },
    }),
    e('acme', 'm4', a4 + 80 * 60_000, 'expired', { ...m4, recipients: ['erin@yahoo.com'], domain: 'yahoo.com', pool: 'marketing', acceptedAt: iso(a4), reason: 'max age 1h exceeded' }),

    e('globex', 'm1', g1, 'accepted', { priority: 'transactional', recipients: ['frank@gmail.com'] }),
    e('globex', 'm1', g1 + 20, 'rendered', { priority: 'transactional', recipients: ['frank@gmail.com'] }),
    e('globex', 'm1', g1 + 300, 'sent', {
      priority: 'transactional', recipients: ['frank@gmail.com'], domain: 'gmail.com', pool: 'transactional', attempt: 1, acceptedAt: iso(g1), ...google('192.0.2.20'),
      smtp: { code: 250, message: 'OK', host: 'mx.gmail.com' }, tls: 'TLSv1.3',
    }),
    e('globex', 'g2', g2, 'accepted', { priority: 'transactional', recipients: ['gina@gmail.com'] }),
    e('globex', 'g2', g2 + 20, 'rendered', { priority: 'transactional', recipients: ['gina@gmail.com'] }),
    e('globex', 'g2', g2 + 900, 'bounced', {
      priority: 'transactional', recipients: ['gina@gmail.com'], domain: 'gmail.com', pool: 'transactional', attempt: 1, acceptedAt: iso(g2), ...google('192.0.2.20'),
      smtp: { code: 550, enhanced: '5.1.1', message: 'No such user', host: 'mx.gmail.com' },
    }),
  ];
}
