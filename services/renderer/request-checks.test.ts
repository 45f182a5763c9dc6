import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkRequest, isBase64 } from './request-checks.js';
import { emailRequest } from '../../test/renderer/email-requests.js';
import type { EmailRequested } from '../../shared/contracts/email-requested.js';

const addr = (email: string) => ({ email });

describe('checkRequest', () => {
  const rejected: Array<{ name: string; req: Partial<EmailRequested>; paths: string[] }> = [
    { name: 'no recipients at all', req: { to: [] }, paths: ['to'] },
    { name: 'more than 50 recipients in all', req: { to: Array.from({ length: 30 }, (_, i) => addr(`t${i}@a.example`)), bcc: Array.from({ length: 21 }, (_, i) => addr(`b${i}@b.example`)) }, paths: ['to'] },
    { name: 'invalid recipient address', req: { to: [addr('alice@example.org'), addr('not an address')] }, paths: ['to.1.email'] },
    { name: 'invalid cc, bcc and reply-to', req: { cc: [addr('x@')], bcc: [addr('@y')], replyTo: [addr('z')] }, paths: ['cc.0.email', 'bcc.0.email', 'replyTo.0.email'] },
    { name: 'invalid from', req: { from: { email: 'shop@exa mple' } }, paths: ['from.email'] },
    { name: 'no content', req: { html: undefined, text: undefined }, paths: ['html'] },
    { name: 'template together with html', req: { template: { name: 'w' }, text: undefined }, paths: ['template'] },
    { name: 'a reserved header', req: { headers: { 'X-Ok': '1', Bcc: 'x@y.example', 'content-type': 'text/html' } }, paths: ['headers.Bcc', 'headers.content-type'] },
    { name: 'a header name with a CR/LF (the contract does not check Record keys)', req: { headers: { 'X-A\r\nBcc': 'v' } }, paths: ['headers."X-A\\r\\nBcc"'] },
    { name: 'an attachment that is not base64', req: { attachments: [{ filename: 'a.txt', content: 'aGVsbG8=' }, { filename: 'b.txt', content: 'not base64!' }] }, paths: ['attachments.1.content'] },
  ];
  for (const c of rejected) {
    test(`rejects: ${c.name}`, () => {
      const { issues, envelope } = checkRequest(emailRequest(c.req));
      assert.deepEqual(
        issues.map((i) => i.path),
        c.paths,
      );
      assert.equal(envelope, undefined);
    });
  }

  test('plans the envelope: from, one group per domain with bcc included, deduplicated', () => {
    const { issues, envelope } = checkRequest(
      emailRequest({
        from: { email: 'News@Shop.Example' },
        to: [addr('a@gmail.com'), addr('c@example.org')],
        cc: [addr('b@GMAIL.com')],
        bcc: [addr('secret@example.org'), addr('a@gmail.com')],
      }),
    );
    assert.deepEqual(issues, []);
    assert.deepEqual(envelope, {
      from: { local: 'News', domain: 'shop.example', address: 'News@shop.example' },
      groups: [
        { domain: 'gmail.com', recipients: ['a@gmail.com', 'b@gmail.com'] },
        { domain: 'example.org', recipients: ['c@example.org', 'secret@example.org'] },
      ],
      recipients: ['a@gmail.com', 'b@gmail.com', 'c@example.org', 'secret@example.org'],
    });
  });

  test('bcc-only and template-only requests are fine', () => {
    const { issues } = checkRequest(emailRequest({ to: [], bcc: [addr('x@example.org')], html: undefined, text: undefined, template: { name: 'w', data: {} } }));
    assert.deepEqual(issues, []);
  });
});

describe('isBase64', () => {
  const cases: Array<[string, boolean]> = [
    ['', true],
    ['aGVsbG8=', true],
    ['aGVsbA==', true],
    ['aGVs', true],
    ['aGVs\r\nbG8=', true],
    ['aGVsbG8', false],
    ['aGV*bG8=', false],
    ['a===', false],
    ['aGVsbG8=aGVs', false],
  ];
  for (const [input, ok] of cases) test(`${JSON.stringify(input)} → ${ok}`, () => assert.equal(isBase64(input), ok));
});
