import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FeedbackKeyring } from './feedback-token.js';
import { espHeadersFor, SENDGRID_REF_ARG } from './esp-headers.js';

const keyring = new FeedbackKeyring([{ id: 1, secret: 'k'.repeat(40) }]);

test('sendgrid: the ref token travels as an X-SMTPAPI unique arg that verifies on the way back', () => {
  const token = keyring.sign({ purpose: 'ref', messageId: 'm-1', tenant: 'acme/eu', recipient: 'Bob@Example.com', fromDomain: 'acme.com', listId: 'news' });
  const headers = espHeadersFor(token, ['sendgrid']);
  assert.deepEqual(Object.keys(headers), ['X-SMTPAPI']);
  const back = JSON.parse(headers['X-SMTPAPI']).unique_args[SENDGRID_REF_ARG];
  assert.equal(keyring.verify(back, 'ref')?.recipient, 'bob@example.com');
});

test('no provider needing a header: none added; a non-token is refused', () => {
  assert.deepEqual(espHeadersFor('abc', []), {});
  assert.throws(() => espHeadersFor('a"b', ['sendgrid']), TypeError);
});
