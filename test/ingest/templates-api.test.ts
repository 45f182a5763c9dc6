import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { IngestHarness, auth } from './ingest-harness.js';

let h: IngestHarness;
before(async () => {
  h = await IngestHarness.start();
});
after(() => h.stop());

const template = { subject: 'Welcome {{name}}', html: '<p>Hi {{name}}</p>{{> footer}}', text: 'Hi {{name}}', partials: { footer: '<p>bye</p>' } };

test('PUT stores a tenant template, GET reads it back, other tenants never see it', async () => {
  const { app } = await h.ingest();
  const put = await app.inject({ method: 'PUT', url: '/v1/templates/welcome', headers: auth('acme'), payload: template });
  assert.equal(put.statusCode, 201, put.body);
  assert.equal(put.json().version, 1);
  const again = await app.inject({ method: 'PUT', url: '/v1/templates/welcome', headers: auth('acme'), payload: { ...template, subject: 'Hello {{name}}' } });
  assert.equal(again.statusCode, 200);
  assert.equal(again.json().version, 2);

  const got = await app.inject({ method: 'GET', url: '/v1/templates/welcome', headers: auth('acme') });
  assert.equal(got.statusCode, 200);
  assert.equal(got.json().subject, 'Hello {{name}}');
  assert.deepEqual(got.json().partials, template.partials);

  const other = await app.inject({ method: 'GET', url: '/v1/templates/welcome', headers: auth('globex') });
  assert.equal(other.statusCode, 404);
  const otherList = await app.inject({ method: 'GET', url: '/v1/templates', headers: auth('globex') });
  assert.deepEqual(otherList.json().templates, []);
  const list = await app.inject({ method: 'GET', url: '/v1/templates', headers: auth('acme') });
  assert.deepEqual(list.json().templates.map((t: { name: string }) => t.name), ['welcome']);

  // A second replica, started later, sees the stored template (it lives on the topic).
  const replica = await h.ingest();
  const fromReplica = await replica.app.inject({ method: 'GET', url: '/v1/templates/welcome', headers: auth('acme') });
  assert.equal(fromReplica.json().version, 2);

  const del = await app.inject({ method: 'DELETE', url: '/v1/templates/welcome', headers: auth('acme') });
  assert.equal(del.statusCode, 204);
  assert.equal((await app.inject({ method: 'GET', url: '/v1/templates/welcome', headers: auth('acme') })).statusCode, 404);
});

test('a template that does not compile, a bad name or unknown fields are 400s naming the part; no key is 401', async () => {
  const { app } = await h.ingest();
  const broken = await app.inject({ method: 'PUT', url: '/v1/templates/broken', headers: auth('acme'), payload: { subject: 'ok', html: '<p>{{#if x}}unclosed</p>' } });
  assert.equal(broken.statusCode, 400);
  assert.ok(broken.json().error.fields.some((f: { field: string }) => f.field === 'html'), broken.body);
  const badName = await app.inject({ method: 'PUT', url: '/v1/templates/..%2Fetc', headers: auth('acme'), payload: { subject: 'ok', text: 'x' } });
  assert.equal(badName.statusCode, 400);
  const unknown = await app.inject({ method: 'PUT', url: '/v1/templates/t1', headers: auth('acme'), payload: { subject: 'ok', text: 'x', body: 'typo' } });
  assert.equal(unknown.statusCode, 400);
  const noKey = await app.inject({ method: 'PUT', url: '/v1/templates/t1', payload: { subject: 'ok', text: 'x' } });
  assert.equal(noKey.statusCode, 401);
});
