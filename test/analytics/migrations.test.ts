/**
 * Schema migrations on the in-process engine: applied twice they are no-ops, an interrupted
 * migration completes when run again, a new migration applies to a database holding data, and
 * retention follows the configuration.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { migrate } from '../../services/analytics/schema/migrator.js';
import { MIGRATIONS } from '../../services/analytics/schema/migrations.js';
import { EVENT_COLUMNS, toEventRow } from '../../services/analytics/sink/event-row.js';
import { openTestEngine, select, loadEvents, type TestEngine } from './support/engine.js';
import { fixtureEvents, fixtureT0 } from './support/fixture-stream.js';

let engine: TestEngine;
before(async () => {
  engine = await openTestEngine();
});
after(() => engine?.destroy());

const params = (database: string, retentionDays = 90, rollupRetentionDays = 400) => ({ database, retentionDays, rollupRetentionDays });
const newName = (): string => `mig_${randomBytes(4).toString('hex')}`;

async function schema(database: string): Promise<Record<string, string>> {
  const rows = await select<{ name: string; create_table_query: string }>(
    engine.client,
    'SELECT name, create_table_query FROM system.tables WHERE database = {db:String} ORDER BY name',
    { db: database },
  );
  return Object.fromEntries(rows.map((r) => [r.name, r.create_table_query]));
}

test('a fresh database gets every migration; applying again changes nothing and keeps the data', async () => {
  const db = newName();
  const first = await migrate(engine.client, params(db));
  assert.deepEqual(first.applied, MIGRATIONS.map((m) => m.version));
  const tables = await schema(db);
  for (const t of ['events', 'message_index', 'message_index_mv', 'stats_per_minute', 'stats_per_minute_mv', 'stats_per_minute_by_tag', 'stats_per_minute_by_tag_mv', 'stats_per_hour', 'stats_per_hour_mv', 'stats_per_hour_by_tag', 'stats_per_hour_by_tag_mv', 'stats_per_minute_by_site', 'stats_per_minute_by_site_mv', 'stats_per_hour_by_site', 'stats_per_hour_by_site_mv', 'schema_migrations']) {
    assert.ok(tables[t], `${t} exists`);
  }
  await loadEvents(engine.client, db, fixtureEvents(fixtureT0()));

  const second = await migrate(engine.client, params(db));
  assert.deepEqual(second, { applied: [], retentionChanged: [] });
  assert.deepEqual(await schema(db), tables);
  const versions = await select<{ n: number }>(engine.client, `SELECT count() AS n FROM ${db}.schema_migrations`);
  assert.equal(Number(versions[0].n), MIGRATIONS.length, 'each version recorded once');
  const events = await select<{ n: number }>(engine.client, `SELECT count() AS n FROM ${db}.events`);
  assert.equal(Number(events[0].n), fixtureEvents(0).length);
});

test('a migration interrupted before its version was recorded completes on the next run', async () => {
  const db = newName();
  await migrate(engine.client, params(db));
  // As if the process died after the statements of the last migration but before recording it.
  await engine.client.command({ query: `ALTER TABLE ${db}.schema_migrations DELETE WHERE version = ${MIGRATIONS.at(-1)!.version}`, clickhouse_settings: { mutations_sync: '2' } });
  const again = await migrate(engine.client, params(db));
  assert.deepEqual(again.applied, [MIGRATIONS.at(-1)!.version]);
});

test('retention follows the configuration: changed TTLs are applied once, then left alone', async () => {
  const db = newName();
  await migrate(engine.client, params(db, 90, 400));
  const changed = await migrate(engine.client, params(db, 30, 200));
  assert.deepEqual(changed.retentionChanged.sort(), ['events', 'message_index', 'stats_per_hour', 'stats_per_hour_by_bounce', 'stats_per_hour_by_engagement', 'stats_per_hour_by_site', 'stats_per_hour_by_tag', 'stats_per_minute', 'stats_per_minute_by_bounce', 'stats_per_minute_by_engagement', 'stats_per_minute_by_site', 'stats_per_minute_by_tag']);
  const engines = await select<{ name: string; engine_full: string }>(engine.client, 'SELECT name, engine_full FROM system.tables WHERE database = {db:String}', { db });
  const ttl = Object.fromEntries(engines.map((e) => [e.name, e.engine_full]));
  assert.match(ttl.events, /TTL toDateTime\(at\) \+ toIntervalDay\(30\)/);
  assert.match(ttl.stats_per_minute, /toIntervalDay\(200\)/);
  assert.match(ttl.stats_per_hour, /toIntervalDay\(200\)/);
  assert.match(ttl.stats_per_minute_by_site, /toIntervalDay\(200\)/);
  assert.deepEqual((await migrate(engine.client, params(db, 30, 200))).retentionChanged, []);
});

test('migration 6 on a database with data: the delivery columns appear with empty values on old rows, new events fill them and the site rollup', async () => {
  const db = newName();
  // The schema and the rows as a sink of before migration 6 left them.
  const before6 = MIGRATIONS.filter((m) => m.version < 6);
  await migrate(engine.client, params(db), undefined, before6);
  const oldColumns = EVENT_COLUMNS.filter((c) => !['tls', 'source_ip', 'site', 'bounce_category', 'dkim_domain', 'dkim_selector', ...MIGRATION_7_COLUMNS, ...MIGRATION_8_COLUMNS].includes(c));
  const t0 = fixtureT0();
  const old = fixtureEvents(t0).map((e, i) => toEventRow(e, { topic: 'old', partition: 0, offset: String(i) }));
  await engine.client.insert({ table: `${db}.events`, values: old.map((r) => Object.fromEntries(oldColumns.map((c) => [c, r[c]]))), format: 'JSONEachRow', clickhouse_settings: { date_time_input_format: 'best_effort' } });

  const result = await migrate(engine.client, params(db), undefined, MIGRATIONS.filter((m) => m.version <= 6));
  assert.deepEqual(result.applied, [6]);
  const oldRows = await select<Record<string, string>>(engine.client, `SELECT tls, source_ip, site, bounce_category, dkim_domain, dkim_selector FROM ${db}.events`);
  assert.equal(oldRows.length, old.length);
  assert.ok(oldRows.every((r) => Object.values(r).every((v) => v === '')), 'rows stored before the migration read empty values');
  assert.deepEqual((await migrate(engine.client, params(db))).applied, [7, 8], 'the later migrations, for the sink of today');

  // A sink of today writes every column; the old rollups count old and new rows, the site rollup the new ones.
  await loadEvents(engine.client, db, [
    { schemaVersion: 1, eventId: 'new-1', type: 'sent', messageId: 'n1', tenant: 'acme', at: new Date(t0 + 1000).toISOString(), stage: 'dispatcher', domain: 'gmail.com', site: 'google', source: '192.0.2.10', tls: 'TLSv1.3' },
    { schemaVersion: 1, eventId: 'new-2', type: 'rendered', messageId: 'n1', tenant: 'acme', at: new Date(t0 + 500).toISOString(), stage: 'renderer', dkim: { domain: 'acme.com', selector: 's1' } },
  ]);
  const fresh = await select<Record<string, string>>(engine.client, `SELECT event_id, tls, source_ip, site, dkim_domain, dkim_selector FROM ${db}.events WHERE message_id = 'n1' ORDER BY event_id`);
  assert.deepEqual(fresh, [
    { event_id: 'new-1', tls: 'TLSv1.3', source_ip: '192.0.2.10', site: 'google', dkim_domain: '', dkim_selector: '' },
    { event_id: 'new-2', tls: '', source_ip: '', site: '', dkim_domain: 'acme.com', dkim_selector: 's1' },
  ]);
  const total = await select<{ n: number }>(engine.client, `SELECT sum(events) AS n FROM ${db}.stats_per_minute`);
  assert.equal(Number(total[0].n), old.length + 2);
  const bySite = await select<{ site: string; n: number }>(engine.client, `SELECT site, sum(events) AS n FROM ${db}.stats_per_minute_by_site GROUP BY site ORDER BY site`);
  assert.deepEqual(bySite.map((r) => [r.site, Number(r.n)]), [['', 1], ['google', 1]]);
  assert.deepEqual(await migrate(engine.client, params(db)), { applied: [], retentionChanged: [] });
});

const MIGRATION_7_COLUMNS = ['bounce_class', 'via', 'from_domain', 'list_id'];
const MIGRATION_8_COLUMNS = ['engagement_first', 'engagement_machine', 'machine_reason', 'link_index', 'url', 'client_ip', 'user_agent'];

test('migration 7 on a database with data: bounce class, via, from domain and list read empty on old rows; new events fill them and the bounce rollup', async () => {
  const db = newName();
  await migrate(engine.client, params(db), undefined, MIGRATIONS.filter((m) => m.version < 7));
  const oldColumns = EVENT_COLUMNS.filter((c) => ![...MIGRATION_7_COLUMNS, ...MIGRATION_8_COLUMNS].includes(c));
  const t0 = fixtureT0();
  const old = fixtureEvents(t0).map((e, i) => toEventRow(e, { topic: 'old', partition: 0, offset: String(i) }));
  await engine.client.insert({ table: `${db}.events`, values: old.map((r) => Object.fromEntries(oldColumns.map((c) => [c, r[c]]))), format: 'JSONEachRow', clickhouse_settings: { date_time_input_format: 'best_effort' } });

  assert.deepEqual((await migrate(engine.client, params(db))).applied, [7, 8]);
  const oldRows = await select<Record<string, string>>(engine.client, `SELECT bounce_class, via, from_domain, list_id FROM ${db}.events`);
  assert.equal(oldRows.length, old.length);
  assert.ok(oldRows.every((r) => Object.values(r).every((v) => v === '')), 'rows stored before the migration read empty values');

  const at = (ms: number) => new Date(t0 + ms).toISOString();
  await loadEvents(engine.client, db, [
    { schemaVersion: 1, eventId: 'b-1', type: 'bounced', messageId: 'n1', tenant: 'acme', at: at(1000), stage: 'dispatcher', recipients: ['a@x.org'], category: 'unknown-user', bounceClass: 'recipient', fromDomain: 'News.Acme.com', listId: 'weekly' },
    { schemaVersion: 1, eventId: 'b-2', type: 'bounced', messageId: 'n2', tenant: 'acme', at: at(2000), stage: 'inbound', recipients: ['b@x.org'], category: 'mailbox-full', bounceClass: 'recipient', via: 'dsn' },
    { schemaVersion: 1, eventId: 'c-1', type: 'complained', messageId: 'n3', tenant: 'acme', at: at(3000), stage: 'inbound', recipients: ['c@x.org'], category: 'abuse', via: 'arf' },
  ]);
  const fresh = await select<Record<string, string>>(engine.client, `SELECT event_id, bounce_category, bounce_class, via, from_domain, list_id FROM ${db}.events WHERE message_id LIKE 'n%' ORDER BY event_id`);
  assert.deepEqual(fresh, [
    { event_id: 'b-1', bounce_category: 'unknown-user', bounce_class: 'recipient', via: '', from_domain: 'news.acme.com', list_id: 'weekly' },
    { event_id: 'b-2', bounce_category: 'mailbox-full', bounce_class: 'recipient', via: 'dsn', from_domain: '', list_id: '' },
    { event_id: 'c-1', bounce_category: 'abuse', bounce_class: '', via: 'arf', from_domain: '', list_id: '' },
  ]);
  const byBounce = await select<{ type: string; c: string; k: string; via: string; n: number }>(
    engine.client,
    `SELECT type, bounce_category AS c, bounce_class AS k, via, sum(events) AS n FROM ${db}.stats_per_minute_by_bounce GROUP BY type, c, k, via ORDER BY type, c`,
  );
  assert.deepEqual(byBounce.map((r) => [r.type, r.c, r.k, r.via, Number(r.n)]), [
    ['bounced', 'mailbox-full', 'recipient', 'dsn', 1],
    ['bounced', 'unknown-user', 'recipient', '', 1],
    ['complained', 'abuse', '', 'arf', 1],
  ]);
  const hourly = await select<{ n: number }>(engine.client, `SELECT sum(events) AS n FROM ${db}.stats_per_hour_by_bounce`);
  assert.equal(Number(hourly[0].n), 3);
});

test('the database name is checked before it reaches SQL', async () => {
  await assert.rejects(migrate(engine.client, params('x; DROP DATABASE system')), /not a plain identifier/);
});

test('migration 8 on a database with data: engagement columns read empty on old rows; new opens and clicks fill them and the engagement rollup', async () => {
  const db = newName();
  await migrate(engine.client, params(db), undefined, MIGRATIONS.filter((m) => m.version < 8));
  const oldColumns = EVENT_COLUMNS.filter((c) => !MIGRATION_8_COLUMNS.includes(c));
  const t0 = fixtureT0();
  const old = fixtureEvents(t0).map((e, i) => toEventRow(e, { topic: 'old', partition: 0, offset: String(i) }));
  await engine.client.insert({ table: `${db}.events`, values: old.map((r) => Object.fromEntries(oldColumns.map((c) => [c, r[c]]))), format: 'JSONEachRow', clickhouse_settings: { date_time_input_format: 'best_effort' } });
  assert.deepEqual((await migrate(engine.client, params(db))).applied, [8]);
  const oldRows = await select<Record<string, unknown>>(engine.client, `SELECT engagement_first, engagement_machine, machine_reason, link_index, url FROM ${db}.events`);
  assert.equal(oldRows.length, old.length);
  assert.ok(oldRows.every((r) => Number(r.engagement_first) === 0 && Number(r.engagement_machine) === 0 && r.machine_reason === '' && r.link_index === null && r.url === ''));
  const at = (ms: number) => new Date(t0 + ms).toISOString();
  for (const tenant of ['acme', 'acme/eu']) {
    await loadEvents(engine.client, db, [
      { schemaVersion: 1, eventId: `${tenant}-o1`, type: 'opened', messageId: 'n1', tenant, at: at(1000), stage: 'tracker', recipients: ['a@x.org'], engagement: { first: true, machine: true, machineReason: 'apple-mpp', ip: '17.1.2.0' } },
      { schemaVersion: 1, eventId: `${tenant}-c1`, type: 'clicked', messageId: 'n1', tenant, at: at(2000), stage: 'tracker', recipients: ['a@x.org'], engagement: { first: true, machine: false, linkIndex: 3, url: 'https://x.org/a', userAgent: 'Firefox' } },
    ]);
  }
  const fresh = await select<Record<string, unknown>>(engine.client, `SELECT event_id, engagement_first AS f, engagement_machine AS m, machine_reason AS r, link_index AS l, url, client_ip AS ip, user_agent AS ua FROM ${db}.events WHERE tenant = 'acme/eu' ORDER BY event_id`);
  assert.deepEqual(fresh.map((r) => [r.event_id, Number(r.f), Number(r.m), r.r, r.l === null ? null : Number(r.l), r.url, r.ip, r.ua]), [
    ['acme/eu-c1', 1, 0, '', 3, 'https://x.org/a', '', 'Firefox'],
    ['acme/eu-o1', 1, 1, 'apple-mpp', null, '', '17.1.2.0', ''],
  ]);
  const rollup = await select<{ tenant: string; type: string; engagement: string; n: number }>(engine.client, `SELECT tenant, type, engagement, sum(events) AS n FROM ${db}.stats_per_minute_by_engagement GROUP BY tenant, type, engagement ORDER BY tenant, type`);
  assert.deepEqual(rollup.map((r) => [r.tenant, r.type, r.engagement, Number(r.n)]), [
    ['acme', 'clicked', 'human', 1],
    ['acme', 'opened', 'apple-mpp', 1],
    ['acme/eu', 'clicked', 'human', 1],
    ['acme/eu', 'opened', 'apple-mpp', 1],
  ]);
});
