import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { IngestHarness, auth } from './ingest-harness.js';
import { waitFor } from '../helpers/broker.js';
import { Topics } from '../../shared/topics.js';
import { PermanentError } from '../../shared/errors.js';
import { BatchingProducer } from '../../shared/kafka/batching-producer.js';
import { openTemplateRepository } from '../../shared/templates/template-repository.js';

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

test('nested tenants: acme cannot GET, DELETE or send with acme/eu’s template (eu%2Fwelcome, eu/welcome)', async () => {
  const { app } = await h.ingest();
  const put = await app.inject({ method: 'PUT', url: '/v1/templates/welcome', headers: auth('acme/eu'), payload: { subject: 'EU {{name}}', text: 'secret EU text' } });
  assert.equal(put.statusCode, 201, put.body);

  for (const url of ['/v1/templates/eu%2Fwelcome', '/v1/templates/eu%2fwelcome', '/v1/templates/..%2Fwelcome']) {
    for (const method of ['GET', 'DELETE'] as const) {
      const res = await app.inject({ method, url, headers: auth('acme') });
      assert.equal(res.statusCode, 400, `${method} ${url}: ${res.body}`);
      assert.equal(res.json().error.fields[0].field, 'name');
      assert.doesNotMatch(res.body, /secret EU text/);
    }
  }
  const send = await app.inject({ method: 'POST', url: '/v1/emails', headers: auth('acme'), payload: { from: 'a@example.com', to: 'b@example.org', template: { name: 'eu/welcome', data: { name: 'x' } } } });
  assert.equal(send.statusCode, 400, send.body);
  assert.equal(send.json().error.fields[0].field, 'template.name');
  const batch = await app.inject({ method: 'POST', url: '/v1/emails/batch', headers: auth('acme'), payload: { messages: [{ from: 'a@example.com', to: 'b@example.org', template: { name: 'eu/welcome' } }] } });
  assert.equal(batch.json().results[0].status, 400, batch.body);

  assert.deepEqual((await app.inject({ method: 'GET', url: '/v1/templates', headers: auth('acme') })).json().templates, []);
  // acme's own template of the same name is a different record.
  await app.inject({ method: 'PUT', url: '/v1/templates/welcome', headers: auth('acme'), payload: { subject: 'acme', text: 'acme text' } });
  assert.equal((await app.inject({ method: 'GET', url: '/v1/templates/welcome', headers: auth('acme/eu') })).json().text, 'secret EU text');
  assert.equal((await app.inject({ method: 'GET', url: '/v1/templates/welcome', headers: auth('acme') })).json().text, 'acme text');
  assert.equal((await app.inject({ method: 'DELETE', url: '/v1/templates/welcome', headers: auth('acme') })).statusCode, 204);
  assert.equal((await app.inject({ method: 'GET', url: '/v1/templates/welcome', headers: auth('acme/eu') })).statusCode, 200);
});

test('a template stored under the legacy key <tenant>/<name> is served after upgrade, to its tenant only', async () => {
  const producer = h.kafka.producer();
  await producer.connect();
  const legacy = { schemaVersion: 1, name: 'legacy-note', subject: 'Old {{name}}', text: 'old body {{name}}', updatedAt: '2025-06-01T00:00:00.000Z', version: 2 };
  await producer.send({ topic: Topics.templates, acks: -1, messages: [{ key: 'acme/eu/legacy-note', value: JSON.stringify(legacy) }] });
  await producer.disconnect();

  const { app } = await h.ingest();
  const got = await app.inject({ method: 'GET', url: '/v1/templates/legacy-note', headers: auth('acme/eu') });
  assert.equal(got.statusCode, 200, got.body);
  assert.equal(got.json().version, 2);
  assert.equal((await app.inject({ method: 'GET', url: '/v1/templates/eu%2Flegacy-note', headers: auth('acme') })).statusCode, 400);

  // The renderer's lookup: a repository opened on the same topic compiles it for acme/eu only.
  const raw = h.kafka.producer();
  await raw.connect();
  const opened = await openTemplateRepository({ kafka: h.kafka, producer: new BatchingProducer(raw), logger: pino({ level: 'silent' }) });
  try {
    assert.equal((await opened.repository.compiled('acme/eu', 'legacy-note')).render({ name: 'Ann' }).text, 'old body Ann');
    await assert.rejects(opened.repository.compiled('acme', 'eu/legacy-note'), (err: unknown) => err instanceof PermanentError);
    await assert.rejects(opened.repository.compiled('acme', 'legacy-note'), (err: unknown) => err instanceof PermanentError && err.code === 'TEMPLATE_NOT_FOUND');

    // The next PUT moves it to the current key; the renderer sees the new version.
    const next = await app.inject({ method: 'PUT', url: '/v1/templates/legacy-note', headers: auth('acme/eu'), payload: { subject: 'New', text: 'new body {{name}}' } });
    assert.equal(next.json().version, 3);
    await waitFor(async () => (await opened.repository.compiled('acme/eu', 'legacy-note')).render({ name: 'Ann' }).text === 'new body Ann', 10_000, 'the renderer to see the moved template');
  } finally {
    await opened.stop();
    await raw.disconnect();
  }
});
