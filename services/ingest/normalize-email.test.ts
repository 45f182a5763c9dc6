import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EmailRequestedContract } from '../../shared/contracts/email-requested.js';
import { normalizeEmail, checkBatchItemShape, type NormalizeLimits } from './normalize-email.js';
import { RequestRejected } from '../../shared/http/errors.js';
import type { EmailBody } from './email-body-schema.js';

const ids = { tenant: 'acme', messageId: '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b', acceptedAt: '2025-01-02T03:04:05.000Z' };
const limits: NormalizeLimits = { maxAttachmentBytes: 1000, maxAttachmentsTotalBytes: 1500, maxMessageBytes: 20_000 };
const base: EmailBody = { from: 'Shop <shop@example.com>', to: ['a@example.org'], subject: 'Hi', text: 'Hello' };
const b64 = (n: number) => Buffer.alloc(n, 7).toString('base64');

function rejection(body: EmailBody, l = limits): RequestRejected {
  try {
    normalizeEmail(body, ids, l);
  } catch (err) {
    assert.ok(err instanceof RequestRejected);
    return err;
  }
  assert.fail(`expected ${JSON.stringify(body).slice(0, 80)} to be refused`);
}

test('a full request becomes a valid EmailRequested record', () => {
  const { record, value } = normalizeEmail(
    {
      from: { email: 'news@bücher.de', name: 'Bücher' },
      to: 'Ann <ann@example.org>',
      cc: ['c@example.net'],
      bcc: [{ email: 'b@example.net' }],
      replyTo: 'support@example.com',
      subject: 'Your order',
      html: '<p>Hi</p>',
      text: 'Hi',
      headers: { 'X-Campaign': 'spring', 'List-Unsubscribe': '<https://example.com/u/1>', 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' },
      attachments: [{ filename: 'a.txt', content: `${b64(30).slice(0, 20)}\r\n${b64(30).slice(20)}`, contentType: 'text/plain' }],
      tags: ['order'],
      metadata: { orderId: '42' },
      priority: 'critical',
      pool: 'transactional',
    },
    { ...ids, idempotencyKey: 'order-42' },
    limits,
  );
  assert.deepEqual(EmailRequestedContract.check(record), []);
  assert.deepEqual(JSON.parse(value.toString()), record);
  assert.equal(record.schemaVersion, 1);
  assert.equal(record.messageId, ids.messageId);
  assert.equal(record.tenant, 'acme');
  assert.equal(record.priority, 'critical');
  assert.deepEqual(record.from, { email: 'news@xn--bcher-kva.de', name: 'Bücher' });
  assert.deepEqual(record.to, [{ email: 'ann@example.org', name: 'Ann' }]);
  assert.deepEqual(record.replyTo, [{ email: 'support@example.com' }]);
  assert.equal(record.attachments?.[0].content, b64(30), 'line breaks in base64 are removed');
  assert.equal(record.idempotencyKey, 'order-42');
});

test('priority defaults to transactional; a template may replace html/text and subject', () => {
  assert.equal(normalizeEmail(base, ids, limits).record.priority, 'transactional');
  const { record } = normalizeEmail({ from: base.from, to: base.to, template: { name: 'welcome', data: { name: 'Ann' } } }, ids, limits);
  assert.deepEqual(record.template, { name: 'welcome', data: { name: 'Ann' } });
  assert.equal(record.subject, undefined);
});

test('each bad field is named, with the status it calls for', () => {
  const many = Array.from({ length: 26 }, (_, i) => `r${i}@example.org`);
  const cases: Array<[string, EmailBody, number, string[]]> = [
    ['CR/LF in a recipient', { ...base, to: ['a@example.org\r\nBcc: x@example.net'] }, 400, ['to.0']],
    ['CR/LF in from', { ...base, from: 'x@example.com\n' }, 400, ['from']],
    ['CR/LF in the subject', { ...base, subject: 'Hi\r\nBcc: x@example.net' }, 400, ['subject']],
    ['NUL in a header value', { ...base, headers: { 'X-A': 'a\u0000b' } }, 400, ['headers.X-A']],
    ['a header outside the allow-list', { ...base, headers: { Bcc: 'x@example.net' } }, 400, ['headers.Bcc']],
    ['an invalid header name', { ...base, headers: { 'X-A B': '1' } }, 400, ['headers.X-A B']],
    ['a header given twice', { ...base, headers: { 'X-A': '1', 'x-a': '2' } }, 400, ['headers.x-a']],
    ['CR/LF in a reply-to name', { ...base, replyTo: { email: 'r@example.com', name: 'R\r\n' } }, 400, ['replyTo']],
    ['CR/LF in an attachment filename', { ...base, attachments: [{ filename: 'a\r\n.txt', content: b64(3) }] }, 400, ['attachments.0.filename']],
    ['CR/LF in a tag', { ...base, tags: ['a\nb'] }, 400, ['tags.0']],
    ['a bad address among good ones', { ...base, to: ['a@example.org', 'nope'], cc: 'c@@example.org' }, 400, ['to.1', 'cc']],
    ['no recipient', { ...base, to: [] }, 400, ['to']],
    ['more than 50 recipients in all', { ...base, to: many, cc: many }, 400, ['to']],
    ['no content', { from: base.from, to: base.to, subject: 'x' }, 400, ['html']],
    ['no subject without a template', { from: base.from, to: base.to, text: 'x' }, 400, ['subject']],
    ['template and html together', { ...base, template: { name: 't' } }, 400, ['template']],
    ['attachment not base64', { ...base, attachments: [{ filename: 'a', content: 'not base64!' }] }, 400, ['attachments.0.content']],
    ['a bad content type', { ...base, attachments: [{ filename: 'a', content: b64(3), contentType: 'pdf' }] }, 400, ['attachments.0.contentType']],
    ['one attachment too large', { ...base, attachments: [{ filename: 'a', content: b64(1001) }] }, 413, ['attachments.0.content']],
    [
      'attachments too large together',
      { ...base, attachments: [{ filename: 'a', content: b64(900) }, { filename: 'b', content: b64(900) }] },
      413,
      ['attachments'],
    ],
    ['the record too large', { ...base, text: 'x'.repeat(30_000) }, 413, ['(body)']],
    ['a bad field wins over a size', { ...base, subject: 'a\rb', attachments: [{ filename: 'a', content: b64(1001) }] }, 400, ['subject', 'attachments.0.content']],
  ];
  for (const [name, body, status, fields] of cases) {
    const err = rejection(body);
    assert.equal(err.code, status === 400 ? 'VALIDATION_FAILED' : 'PAYLOAD_TOO_LARGE', name);
    assert.deepEqual(
      err.fields.map((f) => f.field),
      fields,
      `${name}: ${JSON.stringify(err.fields)}`,
    );
  }
});

test('batch items are shape-checked on their own, naming unknown and mistyped fields', () => {
  assert.doesNotThrow(() => checkBatchItemShape({ ...base, idempotencyKey: 'k' }));
  try {
    checkBatchItemShape({ ...base, attachements: [], priority: 'urgent', to: 5 });
    assert.fail('expected a rejection');
  } catch (err) {
    assert.ok(err instanceof RequestRejected);
    assert.deepEqual(err.fields.map((f) => f.field).sort(), ['attachements', 'priority', 'to']);
  }
});

test('track: carried onto the record as given; absent, the tenant default applies downstream; checkBatchItemShape accepts it and refuses unknown keys', () => {
  assert.deepEqual(normalizeEmail({ ...base, track: { opens: true, clicks: false } }, ids, limits).record.track, { opens: true, clicks: false });
  assert.equal(normalizeEmail(base, ids, limits).record.track, undefined);
  checkBatchItemShape({ ...base, track: { opens: true } });
  assert.throws(() => checkBatchItemShape({ ...base, track: { opens: true, pixels: true } }), (err: RequestRejected) => JSON.stringify(err).includes('track'));
});
