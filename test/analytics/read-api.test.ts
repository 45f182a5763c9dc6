/**
 * The read API against the in-process engine loaded with the fixture stream: timelines,
 * search with cursor pagination, stats, tenant isolation and every kind of bad parameter.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Fastify, { type FastifyInstance } from 'fastify';
import { registerReadApi } from '../../services/analytics/read-api/read-api.js';
import { apiServerOptions } from '../../shared/http/server-options.js';
import { openTestEngine, loadEvents, type TestEngine } from './support/engine.js';
import { fixtureEvents, fixtureT0 } from './support/fixture-stream.js';
import type { EmailEvent } from '../../shared/contracts/email-event.js';

let engine: TestEngine;
let app: FastifyInstance;
const t0 = fixtureT0();
const iso = (ms: number): string => new Date(ms).toISOString();
const HOUR = 3_600_000;

before(async () => {
  engine = await openTestEngine();
  const database = await engine.freshDatabase('readapi');
  await loadEvents(engine.client, database, [...fixtureEvents(t0), ...producedStraightToKafka(t0), ...feedbackEvents(t0), ...engagementEvents(t0)]);
  // Built with the options every public API uses, as services/analytics/main.ts does.
  app = Fastify(apiServerOptions());
  // The tenant comes from the (test) credentials only, never from the query.
  registerReadApi(app, { client: engine.client, database, authenticate: (r) => (r.headers['x-test-tenant'] as string | undefined) ?? null, now: () => t0 + 3 * HOUR });
  await app.ready();
});
after(async () => {
  await app?.close();
  await engine?.destroy();
});

/**
 * Tenant "umbrella": d1 was produced straight to Kafka (no accepted event, the rendered one
 * stands for it); d2 was accepted half an hour before t0 and rendered after it.
 */
function producedStraightToKafka(t: number): EmailEvent[] {
  const e = (id: string, type: EmailEvent['type'], at: number, extra: Partial<EmailEvent> = {}): EmailEvent => ({
    schemaVersion: 1, eventId: `u-${id}-${type}`, type, messageId: id, tenant: 'umbrella', at: iso(at), stage: 'x', recipients: [`${id}@example.com`], ...extra,
  });
  return [
    e('d1', 'rendered', t + 5 * 60_000),
    e('d1', 'sent', t + 5 * 60_000 + 1000, { domain: 'example.com', attempt: 1 }),
    e('d2', 'accepted', t - 30 * 60_000),
    e('d2', 'rendered', t + 60_000),
    // Tenant "acme/eu" (a name extending acme's) reuses acme's message id m1.
    { ...e('m1', 'accepted', t + 10 * 60_000), eventId: 'eu-m1-accepted', tenant: 'acme/eu', recipients: ['eu@example.eu'] },
    // example.eu's MX hosts are at site google but have no address: a DNS bounce.
    { ...e('m1', 'bounced', t + 11 * 60_000, { domain: 'example.eu', attempt: 1, site: 'google', category: 'dns' }), eventId: 'eu-m1-bounced', tenant: 'acme/eu', recipients: ['eu@example.eu'] },
  ];
}

/** Tenants "shop" and "shop/eu": opens and clicks from the tracker, human and machine. */
function engagementEvents(t: number): EmailEvent[] {
  const e = (tenant: string, n: number, type: EmailEvent['type'], at: number, engagement: EmailEvent['engagement'] = {}): EmailEvent => ({
    schemaVersion: 1, eventId: `${tenant}-e${n}`, type, messageId: 'e1', tenant, at: iso(t + at), stage: 'tracker', recipients: ['r@example.org'], ...(type === 'opened' || type === 'clicked' ? { engagement } : {}),
  });
  return [
    e('shop', 1, 'sent', 1000),
    e('shop', 2, 'opened', 2000, { first: true, machine: true, machineReason: 'apple-mpp', ip: '17.58.1.0', userAgent: 'Mozilla/5.0' }),
    e('shop', 3, 'opened', 60_000, { first: false, machine: false, ip: '203.0.113.0' }),
    e('shop', 4, 'clicked', 61_000, { first: true, machine: false, linkIndex: 1, url: 'https://shop.example/a' }),
    e('shop', 5, 'clicked', 61_200, { first: true, machine: true, machineReason: 'click-burst', linkIndex: 2, url: 'https://shop.example/b' }),
    e('shop/eu', 6, 'opened', 5000, { first: true, machine: false }),
  ];
}

/** Tenant "fb": bounce categories and classes from the dispatcher, and feedback from the inbound service. */
function feedbackEvents(t: number): EmailEvent[] {
  const e = (id: string, type: EmailEvent['type'], at: number, extra: Partial<EmailEvent> = {}): EmailEvent => ({
    schemaVersion: 1, eventId: `fb-${id}-${type}-${at}`, type, messageId: id, tenant: 'fb', at: iso(t + at), stage: 'dispatcher', recipients: [`${id}@example.net`], domain: 'example.net', ...extra,
  });
  const news = { fromDomain: 'news.acme.com', listId: 'weekly' };
  return [
    e('f1', 'deferred', 60_000, { category: 'greylisted', bounceClass: 'infrastructure', smtp: { code: 451, enhanced: '4.7.1', message: 'Greylisted' }, ...news }),
    e('f1', 'sent', 120_000, news),
    e('f1', 'bounced', 180_000, { stage: 'inbound', category: 'mailbox-full', bounceClass: 'recipient', via: 'dsn', ...news }),
    e('f1', 'complained', 240_000, { stage: 'inbound', category: 'abuse', via: 'arf', ...news }),
    e('f2', 'bounced', 60_000, { category: 'unknown-user', bounceClass: 'recipient', fromDomain: 'acme.com' }),
    e('f3', 'bounced', 60_000, { category: 'spam', bounceClass: 'content', fromDomain: 'acme.com' }),
    e('f4', 'unsubscribed', 300_000, { stage: 'unsubscribe', via: 'one-click', ...news }),
  ];
}

async function get(url: string, tenant: string | null = 'acme'): Promise<{ status: number; body: any }> {
  const res = await app.inject({ method: 'GET', url, headers: tenant ? { 'x-test-tenant': tenant } : {} });
  return { status: res.statusCode, body: res.json() };
}

test('GET /v1/messages/:id: the full timeline with durations, and each recipient’s state', async () => {
  const { status, body } = await get('/v1/messages/m1');
  assert.equal(status, 200);
  assert.equal(body.messageId, 'm1');
  assert.equal(body.acceptedAt, iso(t0));
  assert.equal(body.priority, 'transactional');
  assert.deepEqual(body.tags, ['welcome']);
  assert.deepEqual(
    body.timeline.map((s: any) => [s.type, s.sincePreviousMs, s.sinceAcceptedMs]),
    [
      ['accepted', 0, 0],
      ['rendered', 100, 100],
      ['deferred', 900, 1000],
      ['sent', 500, 1500],
      ['sent', 60_500, 62_000],
      ['opened', 538_000, 600_000],
    ],
  );
  const deferred = body.timeline[2];
  assert.deepEqual(deferred.smtp, { code: 451, enhanced: '4.7.1', message: 'Greylisted, try again later', host: 'mx.gmail.com' });
  assert.equal(deferred.attempt, 1);
  assert.equal(deferred.nextAttemptAt, iso(t0 + 61_000));
  assert.equal(body.timeline[4].connectionReused, true);
  // How it left: signed by acme.com's s2026 key; gmail from 192.0.2.10 at site google over TLS 1.3, example.org via the relay.
  assert.deepEqual(body.timeline[1].dkim, { domain: 'acme.com', selector: 's2026' });
  assert.deepEqual([deferred.site, deferred.source, deferred.tls], ['google', '192.0.2.10', undefined]);
  assert.deepEqual([body.timeline[4].site, body.timeline[4].source, body.timeline[4].tls], ['google', '192.0.2.10', 'TLSv1.3']);
  assert.deepEqual([body.timeline[3].site, body.timeline[3].source, body.timeline[3].tls], [undefined, undefined, 'TLSv1.2']);
  const byAddress = Object.fromEntries(body.recipients.map((r: any) => [r.address, r]));
  assert.deepEqual(Object.keys(byAddress).sort(), ['alice@gmail.com', 'bob@example.org']);
  assert.equal(byAddress['alice@gmail.com'].state, 'sent');
  assert.equal(byAddress['alice@gmail.com'].attempts, 2);
  assert.equal(byAddress['alice@gmail.com'].afterAcceptedMs, 62_000);
  assert.equal(byAddress['alice@gmail.com'].opened, true);
  assert.equal(byAddress['bob@example.org'].state, 'sent');
  assert.equal(byAddress['bob@example.org'].attempts, 1);
  assert.equal(byAddress['bob@example.org'].afterAcceptedMs, 1500);
  assert.equal(byAddress['bob@example.org'].opened, false);
});

test('GET /v1/messages/:id: a bounce and an expiry show as the recipient’s state with the SMTP reply', async () => {
  const m2 = (await get('/v1/messages/m2')).body;
  assert.equal(m2.recipients[0].state, 'bounced');
  assert.deepEqual(m2.recipients[0].lastSmtp, { code: 550, enhanced: '5.1.1', message: 'User unknown', host: 'mx.gmail.com' });
  const m4 = (await get('/v1/messages/m4')).body;
  assert.equal(m4.recipients[0].state, 'expired');
  assert.equal(m4.recipients[0].afterAcceptedMs, 80 * 60_000);
});

test('tenant isolation: a tenant sees only its own events, even for a message id another tenant also used', async () => {
  const acme = (await get('/v1/messages/m1', 'acme')).body;
  const globex = (await get('/v1/messages/m1', 'globex')).body;
  assert.equal(acme.timeline.length, 6);
  assert.ok(acme.recipients.every((r: any) => r.address !== 'frank@gmail.com'));
  assert.deepEqual(globex.recipients.map((r: any) => r.address), ['frank@gmail.com']);
  assert.equal(globex.timeline.length, 3);
  assert.equal((await get('/v1/messages/g2', 'acme')).status, 404);
  assert.equal((await get('/v1/messages/m3', 'globex')).status, 404);
  const list = (await get(`/v1/messages?from=${iso(t0)}&to=${iso(t0 + HOUR)}`, 'globex')).body;
  assert.deepEqual(list.messages.map((m: any) => m.messageId), ['g2', 'm1']);
  const stats = (await get(`/v1/stats?from=${iso(t0)}&to=${iso(t0 + 2 * HOUR)}`, 'globex')).body;
  assert.equal(stats.groups[0].totals.counts.accepted, 2);
  assert.equal(stats.groups[0].totals.counts.bounced, 1);
});

test('nested tenant names: acme and acme/eu each read only their own message, search results and stats', async () => {
  const eu = (await get('/v1/messages/m1', 'acme/eu')).body;
  assert.deepEqual(eu.recipients.map((r: any) => r.address), ['eu@example.eu']);
  assert.equal(eu.timeline.length, 2);
  assert.deepEqual([eu.timeline[1].category, eu.timeline[1].site], ['dns', 'google']);
  const acme = (await get('/v1/messages/m1', 'acme')).body;
  assert.ok(acme.recipients.every((r: any) => r.address !== 'eu@example.eu'));
  assert.equal(acme.timeline.length, 6);
  const window = `from=${iso(t0)}&to=${iso(t0 + HOUR)}`;
  assert.deepEqual((await get(`/v1/messages?${window}`, 'acme/eu')).body.messages.map((m: any) => m.messageId), ['m1']);
  assert.ok(!(await get(`/v1/messages?${window}&recipient=eu@example.eu`, 'acme')).body.messages.length);
  const euStats = (await get(`/v1/stats?from=${iso(t0)}&to=${iso(t0 + 2 * HOUR)}`, 'acme/eu')).body;
  assert.equal(euStats.groups[0].totals.counts.accepted, 1);
  assert.equal(euStats.groups[0].totals.counts.bounced, 1);
  for (const tenant of ['acme/', 'acme/e', 'acme/eu/x']) assert.equal((await get('/v1/messages/m1', tenant)).status, 404, tenant);
});

test('message ids up to 128 characters reach the route (no 414); a bad percent-encoding is a JSON 400', async () => {
  for (const id of ['m'.repeat(110), 'm'.repeat(128), encodeURIComponent('é'.repeat(64))]) {
    const res = await get(`/v1/messages/${id}`);
    assert.equal(res.status, 404, `${id.length}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.error.code, 'NOT_FOUND');
  }
  const bad = await get('/v1/messages/%zz');
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.code, 'BAD_REQUEST');
});

test('GET /v1/messages: newest first, filters, and cursor pagination that visits every message once', async () => {
  const window = `from=${iso(t0)}&to=${iso(t0 + HOUR)}`;
  const all = (await get(`/v1/messages?${window}`)).body;
  assert.deepEqual(all.messages.map((m: any) => m.messageId), ['m4', 'm3', 'm2', 'm1']);
  assert.equal(all.nextCursor, undefined);
  const m4 = all.messages[0];
  assert.equal(m4.status, 'expired');
  assert.deepEqual(m4.recipients, ['erin@yahoo.com']);
  assert.equal(all.messages[3].status, 'sent');
  assert.deepEqual(all.messages[3].states, { sent: 2 });

  const pages: string[][] = [];
  let cursor: string | undefined;
  do {
    const page = (await get(`/v1/messages?${window}&limit=3${cursor ? `&cursor=${cursor}` : ''}`)).body;
    pages.push(page.messages.map((m: any) => m.messageId));
    cursor = page.nextCursor;
  } while (cursor);
  assert.deepEqual(pages, [['m4', 'm3', 'm2'], ['m1']]);

  const ids = async (q: string): Promise<string[]> => {
    const r = await get(`/v1/messages?${window}&${q}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body.messages.map((m: any) => m.messageId);
  };
  assert.deepEqual(await ids('status=bounced'), ['m2']);
  assert.deepEqual(await ids('status=sent'), ['m3', 'm1']);
  assert.deepEqual(await ids('recipient=bob%40example.org'), ['m1']);
  assert.deepEqual(await ids('tag=newsletter'), ['m4', 'm2']);
  assert.deepEqual(await ids('tag=newsletter&status=bounced'), ['m2']);
  // The window applies to acceptance times.
  const inWindow = async (from: number, to: number): Promise<string[]> => (await get(`/v1/messages?from=${iso(from)}&to=${iso(to)}`)).body.messages.map((m: any) => m.messageId);
  assert.deepEqual(await inWindow(t0 + 3 * 60_000, t0 + HOUR), ['m4', 'm3']);
  assert.deepEqual(await inWindow(t0 + 1000, t0 + 2 * 60_000), []);
});

test('GET /v1/messages: a message produced straight to Kafka is listed by its rendered event; one accepted before the window is not', async () => {
  const { body } = await get(`/v1/messages?from=${iso(t0)}&to=${iso(t0 + HOUR)}`, 'umbrella');
  assert.deepEqual(body.messages.map((m: any) => [m.messageId, m.acceptedAt, m.status]), [['d1', iso(t0 + 5 * 60_000), 'sent']]);
  const earlier = (await get(`/v1/messages?from=${iso(t0 - HOUR)}&to=${iso(t0 + HOUR)}`, 'umbrella')).body;
  assert.deepEqual(earlier.messages.map((m: any) => [m.messageId, m.acceptedAt, m.status]), [
    ['d1', iso(t0 + 5 * 60_000), 'sent'],
    ['d2', iso(t0 - 30 * 60_000), 'rendered'],
  ]);
});

test('GET /v1/stats: counts by type, rates and accepted → sent latency, in total and per bucket', async () => {
  const { status, body } = await get(`/v1/stats?from=${iso(t0)}&to=${iso(t0 + 2 * HOUR)}&interval=1h`);
  assert.equal(status, 200);
  assert.equal(body.groupBy, null);
  assert.equal(body.groups.length, 1);
  const { counts, rates, latencyMs } = body.groups[0].totals;
  assert.deepEqual(
    { accepted: counts.accepted, rendered: counts.rendered, deferred: counts.deferred, sent: counts.sent, bounced: counts.bounced, expired: counts.expired, opened: counts.opened },
    { accepted: 4, rendered: 4, deferred: 2, sent: 3, bounced: 1, expired: 1, opened: 1 },
  );
  assert.equal(rates.delivery, 3 / 5);
  assert.equal(rates.bounce, 1 / 5);
  assert.equal(rates.deferral, 2 / 6);
  // Latencies 800, 1500 and 62 000 ms: the median is the middle one, p99 the largest.
  assert.ok(Math.abs(latencyMs.p50 - 1500) <= 700, `p50 ${latencyMs.p50}`);
  assert.ok(latencyMs.p99 > 30_000 && latencyMs.p99 <= 62_000, `p99 ${latencyMs.p99}`);
  // Everything but the expiry (t0 + 100 min) falls in the first hour.
  assert.deepEqual(body.groups[0].buckets.map((b: any) => [b.start, b.counts.expired, b.counts.accepted]), [
    [iso(t0), 0, 4],
    [iso(t0 + HOUR), 1, 0],
  ]);
});

test('GET /v1/stats over ragged hours: whole hours from the hourly rollup, the edges from the minute rollup', async () => {
  // [t0+10 min, t0+1 h) comes from minutes, [t0+1 h, t0+2 h) from hours, [t0+2 h, t0+130 min) from minutes.
  for (const groupBy of ['', '&groupBy=tag']) {
    const { body } = await get(`/v1/stats?from=${iso(t0 + 10 * 60_000)}&to=${iso(t0 + 130 * 60_000)}&interval=1h${groupBy}`);
    const totals = groupBy ? body.groups.find((g: any) => g.key === 'newsletter').totals.counts : body.groups[0].totals.counts;
    const want = groupBy ? { accepted: 1, deferred: 1, expired: 1, opened: 0 } : { accepted: 1, deferred: 1, expired: 1, opened: 1 };
    assert.deepEqual({ accepted: totals.accepted, deferred: totals.deferred, expired: totals.expired, opened: totals.opened }, want, groupBy);
  }
  const { body } = await get(`/v1/stats?from=${iso(t0 + 10 * 60_000)}&to=${iso(t0 + 130 * 60_000)}&interval=1h`);
  assert.deepEqual(body.groups[0].buckets.map((b: any) => [b.start, b.counts.accepted, b.counts.expired]), [
    [iso(t0), 1, 0],
    [iso(t0 + HOUR), 0, 1],
  ]);
});

test('GET /v1/stats?groupBy=: per domain, priority, pool and tag', async () => {
  const range = `from=${iso(t0)}&to=${iso(t0 + 2 * HOUR)}`;
  const groups = async (by: string): Promise<Record<string, any>> =>
    Object.fromEntries((await get(`/v1/stats?${range}&groupBy=${by}`)).body.groups.map((g: any) => [g.key, g.totals]));
  const domain = await groups('domain');
  assert.deepEqual([domain['gmail.com'].counts.sent, domain['gmail.com'].counts.bounced, domain['gmail.com'].counts.deferred], [1, 1, 1]);
  assert.equal(domain['gmail.com'].rates.bounce, 0.5);
  assert.equal(domain['gmail.com'].latencyMs.p50, 62_000);
  assert.equal(domain['example.org'].latencyMs.p50, 1500);
  assert.deepEqual([domain['yahoo.com'].counts.sent, domain['yahoo.com'].counts.expired, domain['yahoo.com'].counts.deferred], [1, 1, 1]);
  assert.equal(domain['yahoo.com'].rates.delivery, 0.5);
  // Message-wide steps (accepted, rendered, opened) belong to no domain.
  assert.equal(domain[''].counts.accepted, 4);

  const priority = await groups('priority');
  assert.equal(priority.bulk.counts.accepted, 2);
  assert.equal(priority.critical.latencyMs.p99, 800);
  const pool = await groups('pool');
  assert.deepEqual([pool.marketing.counts.bounced, pool.marketing.counts.expired, pool.transactional.counts.sent], [1, 1, 3]);
  const tag = await groups('tag');
  assert.deepEqual([tag.newsletter.counts.accepted, tag.welcome.counts.sent, tag.receipt.counts.sent], [2, 2, 1]);
  assert.equal(tag.newsletter.rates.delivery, 0);
});

test('GET /v1/stats?groupBy=site|source|category: per site, source address and bounce category, each tenant its own (acme, acme/eu)', async () => {
  const range = `from=${iso(t0)}&to=${iso(t0 + 2 * HOUR)}`;
  const groups = async (by: string, tenant: string, interval = ''): Promise<Record<string, any>> => {
    const r = await get(`/v1/stats?${range}&groupBy=${by}${interval}`, tenant);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.groupBy, by);
    return Object.fromEntries(r.body.groups.map((g: any) => [g.key, g.totals]));
  };
  const outcome = (t: any): number[] => [t.counts.sent, t.counts.deferred, t.counts.bounced, t.counts.expired];
  // Hourly buckets read the hourly rollup, minute buckets the minute one: both must agree.
  for (const interval of ['', '&interval=1h']) {
    const site = await groups('site', 'acme', interval);
    assert.deepEqual(Object.keys(site).sort(), ['', 'google', 'yahoo']);
    assert.deepEqual(outcome(site.google), [1, 1, 1, 0], 'acme at google: m1 deferred then sent, m2 bounced (not acme/eu’s bounce)');
    assert.equal(site.google.rates.bounce, 0.5);
    assert.equal(site.google.latencyMs.p50, 62_000);
    assert.deepEqual(outcome(site.yahoo), [1, 1, 0, 0]);
    // Relay deliveries, the scheduler's expiry and message-wide steps name no site.
    assert.deepEqual([site[''].counts.sent, site[''].counts.expired, site[''].counts.accepted], [1, 1, 4]);

    const source = await groups('source', 'acme', interval);
    assert.deepEqual(Object.keys(source).sort(), ['', '192.0.2.10', '192.0.2.11']);
    assert.deepEqual(outcome(source['192.0.2.10']), [2, 1, 0, 0]);
    assert.deepEqual(outcome(source['192.0.2.11']), [0, 1, 1, 0]);
    assert.equal(source['192.0.2.11'].rates.deferral, 0.5);

    const category = await groups('category', 'acme', interval);
    assert.deepEqual(Object.keys(category), [''], 'acme’s only bounce is an SMTP refusal');
    assert.equal(category[''].counts.bounced, 1);

    const euSite = await groups('site', 'acme/eu', interval);
    assert.deepEqual(Object.keys(euSite).sort(), ['', 'google']);
    assert.deepEqual(outcome(euSite.google), [0, 0, 1, 0]);
    assert.equal(euSite[''].counts.accepted, 1);
    const euCategory = await groups('category', 'acme/eu', interval);
    assert.deepEqual([euCategory.dns.counts.bounced, euCategory.dns.counts.accepted], [1, 0]);
    assert.deepEqual(Object.keys(await groups('source', 'acme/eu', interval)), [''], 'acme/eu sent nothing from a source address');
  }
  const globex = await groups('source', 'globex');
  assert.deepEqual(outcome(globex['192.0.2.20']), [1, 0, 1, 0]);
  assert.ok(!('192.0.2.10' in globex));
});

test('GET /v1/stats?groupBy=class|via|fromDomain and the timeline: bounce classes, feedback channels and sending domains', async () => {
  const range = `from=${iso(t0)}&to=${iso(t0 + 2 * HOUR)}`;
  for (const interval of ['', '&interval=1h']) {
    const groups = async (by: string): Promise<Record<string, any>> => {
      const r = await get(`/v1/stats?${range}&groupBy=${by}${interval}`, 'fb');
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return Object.fromEntries(r.body.groups.map((g: any) => [g.key, g.totals.counts]));
    };
    const byClass = await groups('class');
    assert.deepEqual([byClass.recipient.bounced, byClass.content.bounced, byClass.infrastructure.deferred, byClass[''].sent], [2, 1, 1, 1]);
    const byCategory = await groups('category');
    assert.deepEqual([byCategory['unknown-user'].bounced, byCategory['mailbox-full'].bounced, byCategory.spam.bounced, byCategory.greylisted.deferred], [1, 1, 1, 1]);
    const byVia = await groups('via');
    assert.deepEqual([byVia.dsn.bounced, byVia.arf.complained, byVia['one-click'].unsubscribed, byVia[''].bounced], [1, 1, 1, 2]);
    const byDomain = await groups('fromDomain');
    assert.deepEqual([byDomain['news.acme.com'].sent, byDomain['news.acme.com'].complained, byDomain['acme.com'].bounced], [1, 1, 2]);
  }
  assert.deepEqual(Object.keys((await get(`/v1/stats?${range}&groupBy=class`, 'acme')).body.groups.reduce((o: any, g: any) => ({ ...o, [g.key]: 1 }), {})), [''], 'another tenant sees none of it');
  const { body } = await get('/v1/messages/f1', 'fb');
  assert.deepEqual(
    body.timeline.map((s: any) => [s.type, s.category, s.bounceClass, s.via, s.fromDomain, s.listId]),
    [
      ['deferred', 'greylisted', 'infrastructure', undefined, 'news.acme.com', 'weekly'],
      ['sent', undefined, undefined, undefined, 'news.acme.com', 'weekly'],
      ['bounced', 'mailbox-full', 'recipient', 'dsn', 'news.acme.com', 'weekly'],
      ['complained', 'abuse', undefined, 'arf', 'news.acme.com', 'weekly'],
    ],
  );
});

test('bad parameters are refused with 400 naming the parameter; no credentials is 401', async () => {
  const cases: Array<[string, string, RegExp?]> = [
    ['/v1/stats?interval=5x', 'interval'],
    ['/v1/stats?interval=1m&from=2024-01-01T00:00:00Z&to=2024-03-01T00:00:00Z', 'interval', /time range too large for interval 1m.*use interval=/],
    ['/v1/stats?groupBy=recipient', 'groupBy'],
    ['/v1/stats?from=yesterday', 'from'],
    ['/v1/stats?to=2024-01-01', 'to'],
    ['/v1/stats?from=2024-01-02T00:00:00Z&to=2024-01-01T00:00:00Z', 'from', /before/],
    ['/v1/stats?from=2020-01-01T00:00:00Z&to=2024-01-01T00:00:00Z&interval=7d', 'from', /at most/],
    ['/v1/stats?interval=1h&interval=1d', 'interval'],
    ['/v1/stats?tenant=globex', 'tenant', /unknown parameter/],
    ['/v1/messages?status=lost', 'status'],
    ['/v1/messages?limit=0', 'limit'],
    ['/v1/messages?limit=abc', 'limit'],
    ['/v1/messages?cursor=not-a-cursor', 'cursor'],
    ['/v1/messages?recipient=', 'recipient'],
    ['/v1/messages?from=2024-01-01T00:00:00Z&to=2024-06-01T00:00:00Z', 'from', /at most 31 d/],
    ['/v1/messages/%01abc', 'id'],
  ];
  for (const [url, parameter, message] of cases) {
    const { status, body } = await get(url);
    assert.equal(status, 400, `${url} → ${status} ${JSON.stringify(body)}`);
    assert.equal(body.error.code, 'VALIDATION_FAILED');
    assert.equal(body.error.fields[0].field, parameter, url);
    if (message) assert.match(body.error.message, message);
  }
  assert.equal((await get('/v1/stats', null)).status, 401);
  assert.equal((await get('/v1/messages/m1', null)).status, 401);
});

test('user input never becomes SQL: hostile values are only ever compared as values', async () => {
  const hostile = encodeURIComponent("x' OR 1=1 --");
  assert.equal((await get(`/v1/messages/${hostile}`)).status, 404);
  const r = await get(`/v1/messages?from=${iso(t0)}&to=${iso(t0 + HOUR)}&recipient=${hostile}&tag=${encodeURIComponent("') OR ('1'='1")}`);
  assert.equal(r.status, 200);
  assert.deepEqual(r.body.messages, []);
});

test('an unavailable store is a 503 with a retry hint; a broken query a 500 that reveals nothing', async () => {
  const failing = (err: Error) => {
    const a = Fastify();
    const client = { query: async () => Promise.reject(err) } as unknown as TestEngine['client'];
    registerReadApi(a, { client, authenticate: () => 'acme' });
    return a;
  };
  const down = failing(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8123'), { code: 'ECONNREFUSED' }));
  const r1 = await down.inject({ url: '/v1/stats' });
  assert.equal(r1.statusCode, 503);
  assert.equal(r1.json().error.code, 'UNAVAILABLE');
  const notMigrated = failing(Object.assign(new Error('Table postline.stats_per_minute does not exist.'), { code: '60', type: 'UNKNOWN_TABLE' }));
  assert.equal((await notMigrated.inject({ url: '/v1/messages/m1' })).statusCode, 503);
  const bug = failing(Object.assign(new Error('Syntax error: failed at position 12'), { code: '62', type: 'SYNTAX_ERROR' }));
  const r3 = await bug.inject({ url: '/v1/messages' });
  assert.equal(r3.statusCode, 500);
  assert.deepEqual(r3.json(), { error: { code: 'INTERNAL', message: 'internal error' } });
  await Promise.all([down.close(), notMigrated.close(), bug.close()]);
});

test('opens and clicks: /v1/stats counts them, groupBy=engagement splits human from each machine rule, groupBy=first; the timeline shows what the tracker saw (shop, shop/eu)', async () => {
  const range = `from=${iso(t0)}&to=${iso(t0 + 2 * HOUR)}`;
  for (const interval of ['', '&interval=1h']) {
    const total = await get(`/v1/stats?${range}${interval}`, 'shop');
    assert.deepEqual([total.body.groups[0].totals.counts.opened, total.body.groups[0].totals.counts.clicked], [2, 2]);
    const groups = async (by: string, tenant = 'shop'): Promise<Record<string, any>> => {
      const r = await get(`/v1/stats?${range}&groupBy=${by}${interval}`, tenant);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return Object.fromEntries(r.body.groups.map((g: any) => [g.key, g.totals.counts]));
    };
    const by = await groups('engagement');
    assert.deepEqual(Object.keys(by).sort(), ['apple-mpp', 'click-burst', 'human']);
    assert.deepEqual([by.human.opened, by.human.clicked, by['apple-mpp'].opened, by['click-burst'].clicked, by.human.sent], [1, 1, 1, 1, 0]);
    const first = await groups('first');
    assert.deepEqual([first.first.opened, first.first.clicked, first.repeat.opened], [1, 2, 1]);
    const eu = await groups('engagement', 'shop/eu');
    assert.deepEqual(Object.keys(eu), ['human']);
    assert.equal(eu.human.opened, 1);
  }
  const { body } = await get('/v1/messages/e1', 'shop');
  assert.deepEqual(
    body.timeline.filter((s: any) => s.engagement).map((s: any) => [s.type, s.engagement]),
    [
      ['opened', { first: true, machine: true, machineReason: 'apple-mpp', ip: '17.58.1.0', userAgent: 'Mozilla/5.0' }],
      ['opened', { first: false, machine: false, ip: '203.0.113.0' }],
      ['clicked', { first: true, machine: false, linkIndex: 1, url: 'https://shop.example/a' }],
      ['clicked', { first: true, machine: true, machineReason: 'click-burst', linkIndex: 2, url: 'https://shop.example/b' }],
    ],
  );
  assert.deepEqual(
    body.recipients.map((r: any) => [r.address, r.state, r.opened, r.openedByHuman, r.clicked, r.clickedByHuman]),
    [['r@example.org', 'sent', true, true, true, true]],
  );
});
