/**
 * POST /v1/emails through the real broker: a 202 means the EmailRequested record and its
 * accepted event are on their topics; every refused request leaves both topics untouched.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { validate as isUuid, version as uuidVersion } from 'uuid';
import { Topics } from '../../shared/topics.js';
import { IngestHarness, KEYS, auth, email } from './ingest-harness.js';
import type { IngestHandle } from '../../services/ingest/main.js';
import { createLogger } from '../../shared/logger.js';

let h: IngestHarness;
let ingest: IngestHandle;

before(async () => {
  h = await IngestHarness.start();
  ingest = await h.ingest(
    { 'ingest.maxAttachmentBytes': 1000, 'ingest.maxAttachmentsTotalBytes': 1500, 'ingest.maxBodyBytes': 64 * 1024 },
    { listen: true },
  );
  await h.collect();
});
after(() => h.stop());

const post = (payload: unknown, headers: Record<string, string> = auth('acme')) => ingest.app.inject({ method: 'POST', url: '/v1/emails', headers, payload: payload as object });

test('a valid request over HTTP is answered 202 only with its record and accepted event on the topics', async () => {
  const body = email({
    from: { email: 'shop@bücher.de', name: 'Bücher' },
    to: ['Ann <ann@example.org>'],
    cc: 'c@example.net',
    html: '<p>Hi</p>',
    headers: { 'X-Order': '42', 'List-Unsubscribe': '<mailto:u@example.com>' },
    attachments: [{ filename: 'a.txt', content: Buffer.from('attached').toString('base64'), contentType: 'text/plain' }],
    tags: ['order'],
    metadata: { orderId: '42' },
    priority: 'critical',
  });
  const res = await fetch(`${ingest.address}/v1/emails`, { method: 'POST', headers: { ...auth('acme'), 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(res.status, 202);
  const { id } = (await res.json()) as { id: string };
  assert.ok(isUuid(id) && uuidVersion(id) === 7, `${id} is a uuid v7`);

  // Acked before the answer: the records are already in the log.
  const [requested] = await h.waitForKey(Topics.requested, id);
  assert.deepEqual(requested.value, {
    schemaVersion: 1,
    messageId: id,
    tenant: 'acme',
    acceptedAt: requested.value.acceptedAt,
    priority: 'critical',
    from: { email: 'shop@xn--bcher-kva.de', name: 'Bücher' },
    to: [{ email: 'ann@example.org', name: 'Ann' }],
    cc: [{ email: 'c@example.net' }],
    subject: 'Hello',
    html: '<p>Hi</p>',
    text: 'Hi there',
    headers: { 'X-Order': '42', 'List-Unsubscribe': '<mailto:u@example.com>' },
    attachments: [{ filename: 'a.txt', content: Buffer.from('attached').toString('base64'), contentType: 'text/plain' }],
    tags: ['order'],
    metadata: { orderId: '42' },
  });
  const [event] = await h.waitForKey(Topics.events, id);
  assert.equal(event.value.type, 'accepted');
  assert.equal(event.value.tenant, 'acme');
  assert.equal(event.value.stage, 'ingest');
  assert.equal(event.value.priority, 'critical');
  assert.deepEqual(event.value.recipients, ['ann@example.org', 'c@example.net']);
});

test('each tenant key sends as its own tenant', async () => {
  const res = await post(email(), auth('globex'));
  assert.equal(res.statusCode, 202);
  const [requested] = await h.waitForKey(Topics.requested, res.json().id);
  assert.equal(requested.value.tenant, 'globex');
  // A caller cannot name another tenant in the body.
  const forged = await post(email({ tenant: 'acme' }), auth('globex'));
  assert.equal(forged.statusCode, 400);
  assert.deepEqual(forged.json().error.fields.map((f: { field: string }) => f.field), ['tenant']);
});

const big = (n: number) => Buffer.alloc(n, 1).toString('base64');
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

test('every refused request gets its status, names its fields, and produces nothing', async () => {
  const many = Array.from({ length: 51 }, (_, i) => `r${i}@example.org`);
  const cases: Array<{ name: string; payload?: unknown; raw?: string; headers?: Record<string, string>; status: number; code: string; fields?: string[] }> = [
    { name: 'no Authorization', payload: email(), headers: {}, status: 401, code: 'UNAUTHORIZED' },
    { name: 'a wrong key', payload: email(), headers: bearer('pl_not_a_key'), status: 401, code: 'UNAUTHORIZED' },
    { name: 'another scheme', payload: email(), headers: { authorization: `Basic ${KEYS.acme}` }, status: 401, code: 'UNAUTHORIZED' },
    { name: 'CR/LF in a recipient', payload: email({ to: ['a@example.org\r\nBcc: victim@example.net'] }), status: 400, code: 'VALIDATION_FAILED', fields: ['to.0'] },
    { name: 'LF in a display name', payload: email({ from: { email: 's@example.com', name: 'S\nBcc: v@example.net' } }), status: 400, code: 'VALIDATION_FAILED', fields: ['from'] },
    { name: 'CR/LF in the subject', payload: email({ subject: 'Hi\r\nBcc: victim@example.net' }), status: 400, code: 'VALIDATION_FAILED', fields: ['subject'] },
    { name: 'NUL in a header value', payload: email({ headers: { 'X-A': 'x\u0000y' } }), status: 400, code: 'VALIDATION_FAILED', fields: ['headers.X-A'] },
    { name: 'a header outside the allow-list', payload: email({ headers: { 'Content-Type': 'text/html' } }), status: 400, code: 'VALIDATION_FAILED', fields: ['headers.Content-Type'] },
    { name: 'an invalid address', payload: email({ to: ['nobody'], cc: 'x@exa mple.com' }), status: 400, code: 'VALIDATION_FAILED', fields: ['to.0', 'cc'] },
    { name: 'more than 50 recipients', payload: email({ to: many }), status: 400, code: 'VALIDATION_FAILED', fields: ['to'] },
    { name: 'unknown fields', payload: email({ attachements: [], prio: 1 }), status: 400, code: 'VALIDATION_FAILED', fields: ['attachements', 'prio'] },
    { name: 'a wrong priority', payload: email({ priority: 'urgent' }), status: 400, code: 'VALIDATION_FAILED', fields: ['priority'] },
    { name: 'no from', payload: { to: ['a@example.org'], subject: 's', text: 't' }, status: 400, code: 'VALIDATION_FAILED', fields: ['from'] },
    { name: 'no content', payload: { from: 's@example.com', to: 'a@example.org', subject: 's' }, status: 400, code: 'VALIDATION_FAILED', fields: ['html'] },
    { name: 'broken JSON', raw: '{"from":', status: 400, code: 'INVALID_JSON' },
    { name: 'an attachment over the limit', payload: email({ attachments: [{ filename: 'a.bin', content: big(1001) }] }), status: 413, code: 'PAYLOAD_TOO_LARGE', fields: ['attachments.0.content'] },
    {
      name: 'attachments over the total',
      payload: email({ attachments: [{ filename: 'a', content: big(800) }, { filename: 'b', content: big(800) }] }),
      status: 413,
      code: 'PAYLOAD_TOO_LARGE',
      fields: ['attachments'],
    },
    { name: 'a body over the limit', payload: email({ text: 'x'.repeat(70 * 1024) }), status: 413, code: 'PAYLOAD_TOO_LARGE' },
    { name: 'text/plain', raw: 'hello', headers: { ...auth('acme'), 'content-type': 'text/plain' }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
    { name: 'a form', raw: 'from=a', headers: { ...auth('acme'), 'content-type': 'application/x-www-form-urlencoded' }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
    { name: 'an oversized Idempotency-Key', payload: email(), headers: { ...auth('acme'), 'idempotency-key': 'k'.repeat(201) }, status: 400, code: 'VALIDATION_FAILED', fields: ['Idempotency-Key'] },
  ];
  const before = [await h.endOffset(Topics.requested), await h.endOffset(Topics.events)];
  for (const c of cases) {
    const headers = c.headers ?? { ...auth('acme'), ...(c.raw !== undefined ? { 'content-type': 'application/json' } : {}) };
    const res = await ingest.app.inject({ method: 'POST', url: '/v1/emails', headers, ...(c.raw !== undefined ? { payload: c.raw } : { payload: c.payload as object }) });
    assert.equal(res.statusCode, c.status, `${c.name}: ${res.body.slice(0, 300)}`);
    const { error } = res.json();
    assert.equal(error.code, c.code, c.name);
    if (c.fields) assert.deepEqual(error.fields.map((f: { field: string }) => f.field), c.fields, `${c.name}: ${JSON.stringify(error.fields)}`);
    if (c.status === 401) {
      assert.equal(res.headers['www-authenticate'], 'Bearer');
      assert.equal(error.message, 'missing or invalid API key', 'a 401 does not say which part was wrong');
    }
  }
  assert.deepEqual([await h.endOffset(Topics.requested), await h.endOffset(Topics.events)], before, 'nothing was produced');
});

test('probes on the API port, /metrics only on the ops port; metrics count accepted messages by priority and answers by route', async () => {
  assert.equal((await ingest.app.inject({ url: '/healthz' })).statusCode, 200);
  assert.equal((await ingest.app.inject({ url: '/readyz' })).statusCode, 200);
  const onApi = await fetch(`${ingest.address}/metrics`);
  assert.equal(onApi.status, 404);
  assert.equal(((await onApi.json()) as { error: { code: string } }).error.code, 'NOT_FOUND');
  assert.equal((await fetch(`${ingest.opsAddress}/readyz`)).status, 200);
  const metrics = await (await fetch(`${ingest.opsAddress}/metrics`)).text();
  assert.match(metrics, /postline_ingest_accepted_total\{priority="critical",service="ingest"\} 1\b/);
  assert.match(metrics, /postline_ingest_request_seconds_count\{service="ingest",route="\/v1\/emails",method="POST",status="401"\} 3\b/);
  assert.doesNotMatch(metrics, new RegExp(KEYS.acme), 'no key in metrics');
});

test('logs carry messageId and tenant, never the API key', async () => {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger('ingest', { level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const logged = await h.ingest({}, { listen: false, logger });
  const ok = await logged.app.inject({ method: 'POST', url: '/v1/emails', headers: auth('acme'), payload: email() });
  const id = ok.json().id;
  await logged.app.inject({ method: 'POST', url: '/v1/emails', headers: bearer(`${KEYS.acme}x`), payload: email() });
  const accepted = lines.find((l) => l.messageId === id);
  assert.equal(accepted?.tenant, 'acme', 'the accepted line names message and tenant');
  assert.ok(lines.some((l) => l.route === '/v1/emails' && l.status === 202 && l.tenant === 'acme'));
  assert.ok(lines.some((l) => l.route === '/v1/emails' && l.status === 401));
  const all = lines.map((l) => JSON.stringify(l)).join('\n');
  assert.ok(!all.includes(KEYS.acme), 'no API key, valid or not, in any log line');
});
