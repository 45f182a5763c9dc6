/**
 * Every panel of the Grafana dashboards, run for real: its SQL, with Grafana's variables and
 * the ClickHouse plugin's macros expanded, against the in-process engine loaded with the
 * fixture stream, checked against the numbers the fixture was built to produce.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openTestEngine, loadEvents, select, type TestEngine } from './support/engine.js';
import { fixtureEvents, fixtureT0 } from './support/fixture-stream.js';
import { expandPanelSql } from './support/grafana-macros.js';
import type { EmailEvent } from '../../shared/contracts/email-event.js';

const GRAFANA = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../services/analytics/grafana');
const HOUR = 3_600_000;

interface Panel {
  id: number;
  title: string;
  type: string;
  /** Absent on rows. */
  targets?: Array<{ rawSql: string; datasource: { type: string; uid: string }; format: number }>;
  gridPos: { h: number; w: number; x: number; y: number };
}

let engine: TestEngine;
let database: string;
const t0 = fixtureT0();
const dashboards = fs.readdirSync(path.join(GRAFANA, 'dashboards')).filter((f) => f.endsWith('.json'));
const dashboard = JSON.parse(fs.readFileSync(path.join(GRAFANA, 'dashboards', 'postline-email-analytics.json'), 'utf8')) as { uid: string; panels: Panel[]; templating: { list: Array<{ name: string; query: string }> } };

/** A third tenant with messages still under way, for the backlog panel. */
function inFlight(now: number): EmailEvent[] {
  const e = (id: string, type: EmailEvent['type'], at: number, extra: Partial<EmailEvent> = {}): EmailEvent => ({
    schemaVersion: 1, eventId: `${id}-${type}`, type, messageId: id, tenant: 'initech', at: new Date(at).toISOString(), stage: 'x', recipients: [`${id}@example.net`], ...extra,
  });
  const d = { domain: 'example.net' };
  return [
    e('i1', 'accepted', now - 60_000),
    e('i2', 'accepted', now - 50_000), e('i2', 'rendered', now - 49_000),
    e('i3', 'accepted', now - 40_000), e('i3', 'rendered', now - 39_000), e('i3', 'deferred', now - 38_000, { ...d, attempt: 1 }),
    e('i4', 'accepted', now - 30_000), e('i4', 'rendered', now - 29_000), e('i4', 'sent', now - 28_000, { ...d, attempt: 1 }),
    // Finished: the domain receives no mail.
    e('i5', 'accepted', now - 20_000), e('i5', 'rendered', now - 19_000),
    e('i5', 'bounced', now - 18_000, { domain: 'gone.example', attempt: 1, category: 'dns', bounceClass: 'recipient', reason: 'gone.example: NXDOMAIN' }),
    // Feedback on the delivered one: a late bounce (DSN), a complaint (ARF) and an unsubscribe.
    e('i4', 'bounced', now - 17_000, { category: 'mailbox-full', bounceClass: 'recipient', via: 'dsn' }),
    e('i4', 'complained', now - 16_000, { category: 'abuse', via: 'arf' }),
    e('i4', 'unsubscribed', now - 15_000, { via: 'one-click' }),
  ];
}

/** A complaint about an older initech message, inside the fixture's range, and opens and clicks of it (a person's and a machine's). */
function earlierFeedback(t: number): EmailEvent[] {
  const hit = (n: number, type: 'opened' | 'clicked', engagement: EmailEvent['engagement']): EmailEvent => ({ schemaVersion: 1, eventId: `i0-${type}-${n}`, type, messageId: 'i0', tenant: 'initech', at: new Date(t + (5 + n) * 60_000).toISOString(), stage: 'tracker', recipients: ['i0@example.net'], engagement });
  return [
    { schemaVersion: 1, eventId: 'i0-complained', type: 'complained', messageId: 'i0', tenant: 'initech', at: new Date(t + 10 * 60_000).toISOString(), stage: 'inbound', recipients: ['i0@example.net'], category: 'abuse', via: 'arf' },
    hit(0, 'opened', { first: true, machine: true, machineReason: 'apple-mpp' }),
    hit(1, 'opened', { first: false, machine: false }),
    hit(2, 'clicked', { first: true, machine: false, linkIndex: 0, url: 'https://x.example/' }),
  ];
}

before(async () => {
  engine = await openTestEngine();
  database = await engine.freshDatabase('grafana');
  await loadEvents(engine.client, database, [...fixtureEvents(t0), ...inFlight(Date.now()), ...earlierFeedback(t0)]);
});
after(() => engine?.destroy());

/** The panels that query (rows only group them). */
const queries = dashboard.panels.filter((p) => p.type !== 'row');

function panel(title: string): Panel & { targets: NonNullable<Panel['targets']> } {
  const p = queries.find((x) => x.title === title);
  assert.ok(p?.targets, `panel "${title}"`);
  return p as Panel & { targets: NonNullable<Panel['targets']> };
}

async function run(title: string, tenants: string[], range = { fromMs: t0, toMs: t0 + 2 * HOUR }): Promise<Array<Record<string, any>>> {
  const sql = expandPanelSql(panel(title).targets[0].rawSql, { ...range, intervalMs: HOUR, variables: { db: database, tenant: tenants } });
  return select(engine.client, sql);
}

test('dashboards are well-formed: unique panel ids, every target on the provisioned ClickHouse data source', () => {
  assert.deepEqual(dashboards, ['postline-email-analytics.json']);
  const provisioned = fs.readFileSync(path.join(GRAFANA, 'provisioning/datasources/clickhouse.yaml'), 'utf8');
  const uid = /uid: (\S+)/.exec(provisioned)?.[1];
  assert.equal(uid, 'postline-clickhouse');
  assert.match(provisioned, /type: grafana-clickhouse-datasource/);
  const ids = dashboard.panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length);
  for (const p of queries) {
    assert.equal(p.targets?.length, 1, p.title);
    assert.deepEqual(p.targets![0].datasource, { type: 'grafana-clickhouse-datasource', uid }, p.title);
  }
  const titles = queries.map((p) => p.title);
  for (const wanted of [
    'Volume by event type', 'Delivery, bounce and deferral rates by domain', 'Delivery, bounce and deferral rates by pool', 'Delivery latency (accepted → sent) by priority', 'Top bounce reasons', 'Retries by attempt', 'Per-tenant usage', 'Current backlog',
    'Outcomes by site', 'TLS share of sent mail', 'Bounces by category', 'Volume per source address', 'Source address × site', 'Complaints and unsubscribes',
  ]) {
    assert.ok(titles.includes(wanted), wanted);
  }
  // The Delivery row sits below every other panel and holds the direct-delivery panels.
  const row = dashboard.panels.find((p) => p.type === 'row');
  assert.match(row?.title ?? '', /^Delivery/);
  const below = queries.filter((p) => p.gridPos.y > row!.gridPos.y).map((p) => p.title);
  assert.deepEqual(below, ['Outcomes by site', 'TLS share of sent mail', 'Bounces by category', 'Volume per source address', 'Source address × site', 'Complaints and unsubscribes', 'Opens and clicks: people and machines']);
});

test('every panel’s SQL and the tenant variable’s query run against the engine', async () => {
  for (const p of queries) {
    const rows = await run(p.title, ['acme', 'globex', 'initech']);
    if (p.targets![0].format !== 0) continue;
    // Time series: the plugin needs a "time" column; the rest must be labels or numbers.
    assert.ok(rows.length > 0, p.title);
    for (const r of rows) {
      assert.ok('time' in r, `${p.title}: no time column`);
      for (const [k, v] of Object.entries(r)) if (k !== 'time') assert.ok(v === null || ['number', 'string'].includes(typeof v), `${p.title}: ${k} is ${JSON.stringify(v)}`);
    }
  }
  const variable = dashboard.templating.list.find((v) => v.name === 'tenant')!;
  const tenants = await select<{ tenant: string }>(engine.client, expandPanelSql(variable.query, { fromMs: t0, toMs: t0 + 2 * HOUR, intervalMs: HOUR, variables: { db: database } }));
  assert.deepEqual(tenants.map((t) => t.tenant), ['acme', 'globex', 'initech'], 'initech: its earlier complaint');
});

test('volume by event type: per-hour counts per type', async () => {
  const rows = await run('Volume by event type', ['acme']);
  const at = (ms: number, type: string): number => Number(rows.find((r) => Date.parse(`${r.time}Z`) === ms && r.type === type)?.events ?? 0);
  assert.deepEqual([at(t0, 'accepted'), at(t0, 'sent'), at(t0, 'deferred'), at(t0, 'bounced'), at(t0, 'opened')], [4, 3, 2, 1, 1]);
  assert.deepEqual([at(t0 + HOUR, 'expired'), at(t0 + HOUR, 'accepted')], [1, 0]);
});

test('rates by domain and by pool', async () => {
  const byDomain = Object.fromEntries((await run('Delivery, bounce and deferral rates by domain', ['acme'])).map((r) => [r.domain, r]));
  assert.deepEqual(Object.keys(byDomain).sort(), ['example.org', 'gmail.com', 'yahoo.com']);
  assert.deepEqual([byDomain['gmail.com'].sent, byDomain['gmail.com'].bounced, byDomain['gmail.com'].deferred].map(Number), [1, 1, 1]);
  assert.deepEqual([byDomain['gmail.com'].delivery_rate, byDomain['gmail.com'].bounce_rate, byDomain['gmail.com'].deferral_rate], [0.5, 0.5, 0.3333]);
  assert.deepEqual([byDomain['yahoo.com'].delivery_rate, byDomain['example.org'].delivery_rate], [0.5, 1]);
  const byPool = Object.fromEntries((await run('Delivery, bounce and deferral rates by pool', ['acme'])).map((r) => [r.pool, r]));
  assert.deepEqual([byPool.marketing.delivery_rate, byPool.marketing.bounce_rate, byPool.marketing.deferral_rate], [0, 0.5, 0.5]);
  assert.deepEqual([byPool.transactional.delivery_rate, byPool.transactional.deferral_rate], [1, 0.25]);
});

test('bounce and deferral rates over time', async () => {
  const rows = await run('Bounce and deferral rates over time', ['acme']);
  const first = rows.find((r) => Date.parse(`${r.time}Z`) === t0)!;
  const second = rows.find((r) => Date.parse(`${r.time}Z`) === t0 + HOUR)!;
  assert.equal(first.bounce_rate, 0.25);
  assert.equal(first.deferral_rate, 2 / 6);
  assert.equal(second.bounce_rate, 0);
  assert.equal(second.deferral_rate, null);
});

test('latency percentiles by priority', async () => {
  const rows = await run('Delivery latency (accepted → sent) by priority', ['acme']);
  const critical = rows.find((r) => r.priority === 'critical')!;
  assert.deepEqual([critical.p50, critical.p95, critical.p99], [800, 800, 800]);
  const transactional = rows.find((r) => r.priority === 'transactional')!;
  assert.ok(transactional.p99 > 30_000 && transactional.p99 <= 62_000, `p99 ${transactional.p99}`);
  assert.ok(transactional.p50 >= 1500 && transactional.p50 <= 62_000, `p50 ${transactional.p50}`);
  assert.equal(rows.some((r) => r.priority === 'bulk'), false, 'no bulk message was sent');
});

test('top bounce reasons, retries by attempt, per-tenant usage', async () => {
  const reasons = await run('Top bounce reasons', ['acme', 'globex']);
  assert.deepEqual(reasons.map((r) => [r.code, r.enhanced, Number(r.bounces), Number(r.domains)]), [[550, '5.1.1', 2, 1]]);

  const attempts = await run('Retries by attempt', ['acme']);
  assert.deepEqual(attempts.map((r) => [r.attempt_number, Number(r.sent), Number(r.deferred), Number(r.bounced)]), [['1', 2, 2, 1], ['2', 1, 0, 0]]);

  const usage = Object.fromEntries((await run('Per-tenant usage', ['acme', 'globex'])).map((r) => [r.tenant, [r.messages, r.recipients, r.sent, r.bounced].map(Number)]));
  assert.deepEqual(usage, { acme: [4, 5, 3, 1], globex: [2, 2, 1, 1] });
});

test('current backlog: messages waiting to render, to dispatch and for a retry', async () => {
  const rows = await run('Current backlog', ['initech'], { fromMs: Date.now() - HOUR, toMs: Date.now() });
  assert.deepEqual(rows.map((r) => [r.state, Number(r.messages)]), [['accepted', 1], ['deferred', 1], ['rendered', 1]]);
  assert.deepEqual(await run('Current backlog', ['acme']), [], 'every acme message is finished');
});

test('delivery: outcomes by site, TLS share of sent mail, bounces by category, volume per source address and per (source, site)', async () => {
  const bySite = Object.fromEntries((await run('Outcomes by site', ['acme'])).map((r) => [r.site, r]));
  assert.deepEqual(Object.keys(bySite).sort(), ['google', 'yahoo'], 'relay deliveries name no site');
  assert.deepEqual([bySite.google.sent, bySite.google.bounced, bySite.google.deferred].map(Number), [1, 1, 1]);
  assert.deepEqual([bySite.google.delivery_rate, bySite.google.bounce_rate, bySite.google.deferral_rate], [0.5, 0.5, 0.3333]);
  assert.deepEqual([bySite.yahoo.delivery_rate, bySite.yahoo.deferral_rate], [1, 0.5]);
  const google = (await run('Outcomes by site', ['acme', 'globex'])).find((r) => r.site === 'google')!;
  assert.deepEqual([google.sent, google.bounced].map(Number), [2, 2], 'globex adds one sent and one bounced at google');

  // acme sent three: gmail over TLSv1.3, example.org over TLSv1.2 (relay), yahoo in plaintext.
  const tls = await run('TLS share of sent mail', ['acme']);
  assert.deepEqual(tls.map((r) => [Date.parse(`${r.time}Z`), r.tls_share]), [[t0, 2 / 3]]);
  const withGlobex = await run('TLS share of sent mail', ['acme', 'globex']);
  assert.equal(withGlobex[0].tls_share, 3 / 4);

  // The fixture's SMTP bounces carry no category (as events from before the rule table).
  assert.deepEqual((await run('Bounces by category', ['acme', 'globex'])).map((r) => [r.category, r.class, Number(r.bounces), r.share]), [['unclassified', '-', 2, 1]]);
  const now = { fromMs: Date.now() - HOUR, toMs: Date.now() };
  assert.deepEqual((await run('Bounces by category', ['initech'], now)).map((r) => [r.category, r.class, Number(r.bounces), Number(r.async), Number(r.recipients)]), [
    ['dns', 'recipient', 1, 0, 1],
    ['mailbox-full', 'recipient', 1, 1, 1],
  ]);
  assert.deepEqual((await run('Bounces by category', ['acme', 'globex', 'initech'], { fromMs: t0, toMs: Date.now() })).map((r) => [r.category, Number(r.bounces), r.share]), [
    ['unclassified', 2, 0.5],
    ['dns', 1, 0.25],
    ['mailbox-full', 1, 0.25],
  ]);
  const feedback = await run('Complaints and unsubscribes', ['initech'], now);
  assert.deepEqual(feedback.map((r) => [r.series, Number(r.events)]).sort(), [['complained (arf)', 1], ['unsubscribed (one-click)', 1]]);
  assert.deepEqual((await run('Complaints and unsubscribes', ['acme', 'globex', 'initech'])).map((r) => [Date.parse(`${r.time}Z`), r.series, Number(r.events)]), [[t0, 'complained (arf)', 1]]);
  assert.deepEqual(await run('Complaints and unsubscribes', ['acme', 'globex']), [], 'other tenants had none');

  const volume = await run('Volume per source address', ['acme']);
  assert.deepEqual(volume.map((r) => [Date.parse(`${r.time}Z`), r.source, Number(r.attempts)]), [
    [t0, '192.0.2.10', 3],
    [t0, '192.0.2.11', 2],
  ]);

  const pairs = (await run('Source address × site', ['acme'])).map((r) => [r.source, r.site, r.pool, Number(r.sent), Number(r.deferred), Number(r.bounced), r.bounce_rate, r.deferral_rate]);
  assert.deepEqual(pairs, [
    ['192.0.2.10', 'google', 'transactional', 1, 1, 0, 0, 0.5],
    ['192.0.2.10', 'yahoo', 'transactional', 1, 0, 0, 0, 0],
    ['192.0.2.11', 'google', 'marketing', 0, 0, 1, 1, 0],
    ['192.0.2.11', 'yahoo', 'marketing', 0, 1, 0, null, 1],
  ]);
});

test('opens and clicks: people and machines per interval', async () => {
  const rows = await run('Opens and clicks: people and machines', ['initech']);
  const total = (series: string): number => rows.filter((r) => r.series === series).reduce((a, r) => a + Number(r.events), 0);
  assert.deepEqual([total('opened (apple-mpp)'), total('opened (human)'), total('clicked (human)')], [1, 1, 1]);
  const acme = await run('Opens and clicks: people and machines', ['acme']);
  assert.ok(acme.every((r) => r.series === 'opened (human)'), 'acme sees only its own (the fixture’s plain opens), none of initech’s');
});
