/**
 * `/v1/suppressions` on the send API against the embedded broker: add one and in bulk, search
 * by prefix with paging, CSV export, delete, 400s naming the field, a weaker entry never
 * replacing a stronger one, and tenant isolation between `acme` and `acme/eu`.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'csv-parse/sync';
import { IngestHarness, auth } from '../ingest/ingest-harness.js';

let h: IngestHarness;
before(async () => {
  h = await IngestHarness.start();
});
after(() => h.stop());

test('add, search with paging, export, delete; acme and acme/eu apart', async () => {
  const { app } = await h.ingest();
  const one = await app.inject({ method: 'POST', url: '/v1/suppressions', headers: auth('acme'), payload: { address: 'Zed@Example.COM', note: 'asked by phone' } });
  assert.equal(one.statusCode, 201, one.body);
  assert.equal(one.json().items[0].address, 'zed@example.com');
  assert.equal(one.json().items[0].reason, 'manual');

  const items = Array.from({ length: 250 }, (_, i) => ({ address: `user${String(i).padStart(3, '0')}@example.org`, ...(i % 50 === 0 ? { list: 'news', reason: 'unsubscribe' } : {}) }));
  const bulk = await app.inject({ method: 'POST', url: '/v1/suppressions', headers: auth('acme'), payload: { items } });
  assert.equal(bulk.statusCode, 201, bulk.body);
  assert.equal(bulk.json().added, 250);

  const eu = await app.inject({ method: 'POST', url: '/v1/suppressions', headers: auth('acme/eu'), payload: { address: 'user000@example.org', reason: 'complaint' } });
  assert.equal(eu.statusCode, 201);

  // Paging: every entry once, in order, 100 at a time.
  const seen: string[] = [];
  let cursor: string | undefined;
  do {
    const res = await app.inject({ method: 'GET', url: `/v1/suppressions?address=user&limit=100${cursor ? `&cursor=${cursor}` : ''}`, headers: auth('acme') });
    assert.equal(res.statusCode, 200, res.body);
    seen.push(...res.json().items.map((s: { address: string }) => s.address));
    cursor = res.json().nextCursor;
  } while (cursor);
  assert.equal(seen.length, 250);
  assert.deepEqual(seen, [...seen].sort());
  const listOnly = await app.inject({ method: 'GET', url: '/v1/suppressions?list=news', headers: auth('acme') });
  assert.equal(listOnly.json().items.length, 5);
  const byReason = await app.inject({ method: 'GET', url: '/v1/suppressions?reason=manual&address=zed', headers: auth('acme') });
  assert.deepEqual(byReason.json().items.map((s: { note: string }) => s.note), ['asked by phone']);

  // acme/eu sees its one entry only, and acme never sees it.
  const euList = await app.inject({ method: 'GET', url: '/v1/suppressions', headers: auth('acme/eu') });
  assert.deepEqual(euList.json().items.map((s: { address: string; reason: string }) => [s.address, s.reason]), [['user000@example.org', 'complaint']]);
  const acmeUser0 = await app.inject({ method: 'GET', url: '/v1/suppressions?address=user000@', headers: auth('acme') });
  assert.ok(acmeUser0.json().items.every((s: { reason: string }) => s.reason !== 'complaint'));
  const globex = await app.inject({ method: 'GET', url: '/v1/suppressions', headers: auth('globex') });
  assert.deepEqual(globex.json().items, []);

  const csv = await app.inject({ method: 'GET', url: '/v1/suppressions.csv', headers: auth('acme') });
  assert.equal(csv.statusCode, 200);
  assert.match(csv.headers['content-type'] as string, /text\/csv/);
  const rows = parse(csv.body, { columns: true }) as Array<Record<string, string>>;
  assert.equal(rows.length, 251);
  assert.equal(rows.find((r) => r.address === 'zed@example.com')?.note, 'asked by phone');

  // Delete: only the named scope, only the own tenant.
  const delOther = await app.inject({ method: 'DELETE', url: '/v1/suppressions/zed@example.com', headers: auth('acme/eu') });
  assert.equal(delOther.statusCode, 404);
  const del = await app.inject({ method: 'DELETE', url: '/v1/suppressions/ZED@example.com', headers: auth('acme') });
  assert.equal(del.statusCode, 204);
  const delList = await app.inject({ method: 'DELETE', url: '/v1/suppressions/user050@example.org?list=news', headers: auth('acme') });
  assert.equal(delList.statusCode, 204);
  const after = await app.inject({ method: 'GET', url: '/v1/suppressions?address=zed', headers: auth('acme') });
  assert.deepEqual(after.json().items, []);

  // A second replica reads the same list from the topic.
  const { app: other } = await h.ingest();
  const again = await other.inject({ method: 'GET', url: '/v1/suppressions?limit=1000', headers: auth('acme') });
  assert.equal(again.json().items.length, 249);
});

test('a bad address is a 400 naming the field; a weaker entry does not replace a stronger one', async () => {
  const { app } = await h.ingest();
  const bad = await app.inject({ method: 'POST', url: '/v1/suppressions', headers: auth('acme'), payload: { address: 'not an address' } });
  assert.equal(bad.statusCode, 400);
  assert.equal(bad.json().error.fields[0].field, 'address');
  const badBulk = await app.inject({ method: 'POST', url: '/v1/suppressions', headers: auth('acme'), payload: { items: [{ address: 'a@example.org' }, { address: 'b@' }] } });
  assert.equal(badBulk.statusCode, 400);
  assert.equal(badBulk.json().error.fields[0].field, 'items.1.address');
  const badReason = await app.inject({ method: 'POST', url: '/v1/suppressions', headers: auth('acme'), payload: { address: 'a@example.org', reason: 'because' } });
  assert.equal(badReason.statusCode, 400);
  const tooMany = await app.inject({ method: 'POST', url: '/v1/suppressions', headers: auth('acme'), payload: { items: Array.from({ length: 10_001 }, (_, i) => ({ address: `x${i}@example.org` })) } });
  assert.equal(tooMany.statusCode, 400);
  const badCursor = await app.inject({ method: 'GET', url: '/v1/suppressions?cursor=nonsense', headers: auth('acme') });
  assert.equal(badCursor.statusCode, 400);

  await app.inject({ method: 'POST', url: '/v1/suppressions', headers: auth('acme'), payload: { address: 'angry@example.org', reason: 'complaint' } });
  const weaker = await app.inject({ method: 'POST', url: '/v1/suppressions', headers: auth('acme'), payload: { address: 'angry@example.org' } });
  assert.equal(weaker.statusCode, 200);
  assert.equal(weaker.json().kept, 1);
  const got = await app.inject({ method: 'GET', url: '/v1/suppressions?address=angry', headers: auth('acme') });
  assert.equal(got.json().items[0].reason, 'complaint');
});

test('a bulk import of 10,000 entries', async () => {
  const { app } = await h.ingest();
  const items = Array.from({ length: 10_000 }, (_, i) => ({ address: `bulk${i}@example.net`, note: 'import' }));
  const res = await app.inject({ method: 'POST', url: '/v1/suppressions', headers: auth('globex'), payload: { items } });
  assert.equal(res.statusCode, 201, res.body.slice(0, 500));
  assert.equal(res.json().added, 10_000);
  const page = await app.inject({ method: 'GET', url: '/v1/suppressions?address=bulk9999@', headers: auth('globex') });
  assert.equal(page.json().items.length, 1);
});
