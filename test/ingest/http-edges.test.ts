/**
 * The send API's edges against a listening server: every answer uses the JSON error shape
 * (Node's and Fastify's own refusals included), repeated credentials are refused, deep JSON is
 * a 400 naming the field, a tenant's sender domains are enforced, and /metrics stays off the
 * public port unless configured.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Topics } from '../../shared/topics.js';
import { IngestHarness, KEYS, auth, email } from './ingest-harness.js';
import type { IngestHandle } from '../../services/ingest/main.js';

let h: IngestHarness;
let ingest: IngestHandle;

before(async () => {
  h = await IngestHarness.start();
  ingest = await h.ingest({ 'ingest.senderDomains': { acme: ['example.com', '*.mail.acme.test'] } }, { listen: true });
});
after(() => h.stop());

interface RawAnswer {
  status: number;
  headers: string;
  body: string;
}

/** Sends `request` as written (repeated headers stay repeated) and reads the answer until the server closes. */
function raw(request: string): Promise<RawAnswer> {
  const u = new URL(ingest.address!);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(u.port), u.hostname, () => socket.write(request));
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (d) => (text += d));
    socket.on('error', reject);
    socket.on('close', () => {
      const [head, ...rest] = text.split('\r\n\r\n');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), headers: head, body: rest.join('\r\n\r\n') });
    });
  });
}

function post(headers: string[], body = JSON.stringify(email())): Promise<RawAnswer> {
  return raw(['POST /v1/emails HTTP/1.1', 'Host: x', 'Content-Type: application/json', `Content-Length: ${Buffer.byteLength(body)}`, 'Connection: close', ...headers, '', body].join('\r\n'));
}

function errorOf(a: RawAnswer): { code: string; message: string; fields?: Array<{ field: string; message: string }> } {
  assert.match(a.headers, /content-type: application\/json/i, a.headers);
  return (JSON.parse(a.body) as { error: { code: string; message: string } }).error;
}

test('a repeated Authorization or Idempotency-Key header is a 400 naming it, and nothing is produced', async () => {
  const before = await h.endOffset(Topics.requested);
  const twoKeys = await post([`Authorization: Bearer ${KEYS.acme}`, `Authorization: Bearer ${KEYS.globex}`]);
  assert.equal(twoKeys.status, 400, twoKeys.body);
  assert.deepEqual(errorOf(twoKeys).fields?.map((f) => f.field), ['Authorization']);
  const twoIdem = await post([`Authorization: Bearer ${KEYS.acme}`, 'Idempotency-Key: a', 'idempotency-key: b']);
  assert.equal(twoIdem.status, 400, twoIdem.body);
  assert.deepEqual(errorOf(twoIdem).fields?.map((f) => f.field), ['Idempotency-Key']);
  assert.equal(await h.endOffset(Topics.requested), before);
  assert.equal((await post([`Authorization: Bearer ${KEYS.acme}`, 'Idempotency-Key: once'])).status, 202);
});

test('headers over the size limit: 431 in the JSON error shape', async () => {
  const res = await post([`Authorization: Bearer ${KEYS.acme}`, `X-Big: ${'a'.repeat(20_000)}`]);
  assert.equal(res.status, 431);
  assert.equal(errorOf(res).code, 'HEADERS_TOO_LARGE');
});

test('a bad percent-encoding in the path: 400 in the JSON error shape, not FST_ERR_BAD_URL', async () => {
  const res = await raw(`GET /v1/templates/%zz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEYS.acme}\r\nConnection: close\r\n\r\n`);
  assert.equal(res.status, 400, res.body);
  assert.equal(errorOf(res).code, 'BAD_REQUEST');
  assert.doesNotMatch(res.body, /FST_ERR/);
});

test('template names up to 128 characters reach the route (no 414); longer ones are a 400 naming "name"', async () => {
  for (const length of [110, 128]) {
    const res = await ingest.app.inject({ method: 'GET', url: `/v1/templates/${'a'.repeat(length)}`, headers: auth('acme') });
    assert.equal(res.statusCode, 404, `${length}: ${res.body}`);
    assert.equal(res.json().error.code, 'NOT_FOUND');
  }
  const put = await ingest.app.inject({ method: 'PUT', url: `/v1/templates/${'b'.repeat(128)}`, headers: auth('acme'), payload: { subject: 's', text: 't' } });
  assert.equal(put.statusCode, 201, put.body);
  const long = await ingest.app.inject({ method: 'GET', url: `/v1/templates/${'a'.repeat(129)}`, headers: auth('acme') });
  assert.equal(long.statusCode, 400);
  assert.equal(long.json().error.fields[0].field, 'name');
  const huge = await ingest.app.inject({ method: 'GET', url: `/v1/templates/${'a'.repeat(600)}`, headers: auth('acme') });
  assert.equal(huge.statusCode, 414);
  assert.equal(huge.json().error.code, 'URI_TOO_LONG');
});

const deep = (n: number): string => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`;

test('template.data nested 10,000 deep is a 400 naming template.data (single and batch), never a 500', async () => {
  const before = await h.endOffset(Topics.requested);
  const body = `{"from":"a@example.com","to":"b@example.org","template":{"name":"welcome","data":${deep(10_000)}}}`;
  const res = await ingest.app.inject({ method: 'POST', url: '/v1/emails', headers: { ...auth('acme'), 'content-type': 'application/json' }, payload: body });
  assert.equal(res.statusCode, 400, res.body.slice(0, 300));
  assert.deepEqual(res.json().error.fields.map((f: { field: string }) => f.field), ['template.data']);
  assert.match(res.json().error.fields[0].message, /32 levels/);
  const batch = await ingest.app.inject({ method: 'POST', url: '/v1/emails/batch', headers: { ...auth('acme'), 'content-type': 'application/json' }, payload: `{"messages":[${body}]}` });
  assert.equal(batch.json().results[0].status, 400, batch.body.slice(0, 300));
  assert.equal(batch.json().results[0].error.fields[0].field, 'template.data');
  assert.equal(await h.endOffset(Topics.requested), before);
  // As deep as real data gets: accepted.
  const ok = await ingest.app.inject({ method: 'POST', url: '/v1/emails', headers: { ...auth('acme'), 'content-type': 'application/json' }, payload: body.replace(deep(10_000), deep(31)) });
  assert.equal(ok.statusCode, 202, ok.body);
});

test('sender domains: a listed tenant may only send from its domains (400 naming from); others from any', async () => {
  const send = (tenant: keyof typeof KEYS, from: string) => ingest.app.inject({ method: 'POST', url: '/v1/emails', headers: auth(tenant), payload: email({ from }) });
  assert.equal((await send('acme', 'news@example.com')).statusCode, 202);
  assert.equal((await send('acme', 'Shop <x@eu.mail.acme.test>')).statusCode, 202);
  const refused = await send('acme', 'x@globex.example');
  assert.equal(refused.statusCode, 400);
  assert.deepEqual(refused.json().error.fields.map((f: { field: string }) => f.field), ['from']);
  assert.match(refused.json().error.fields[0].message, /globex\.example/);
  assert.equal((await send('globex', 'x@anything.example')).statusCode, 202);
  assert.equal((await send('acme/eu', 'x@anything.example')).statusCode, 202, 'acme/eu is not acme');
});

test('/metrics on the API port only when ingest.metricsOnApiPort is set', async () => {
  const off = await ingest.app.inject({ url: '/metrics' });
  assert.equal(off.statusCode, 404);
  assert.match(off.json().error.message, /ops port/);
  assert.match(await (await fetch(`${ingest.opsAddress}/metrics`)).text(), /postline_ingest/);
  const on = await h.ingest({ 'ingest.metricsOnApiPort': true });
  const res = await on.app.inject({ url: '/metrics' });
  assert.equal(res.statusCode, 200);
  assert.match(res.body, /postline_ingest/);
});
