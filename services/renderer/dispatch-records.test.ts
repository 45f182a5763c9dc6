import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { dispatchRecords } from './dispatch-records.js';
import { checkRequest } from './request-checks.js';
import { EmailReadyForDispatchContract } from '../../shared/contracts/email-ready-for-dispatch.js';
import { emailRequest } from '../../test/renderer/email-requests.js';

describe('dispatchRecords', () => {
  const raw = 'Subject: "quoted" \\ backslash ü\r\n\r\nbody\r\n';

  test('one valid record per domain, keyed by domain, on the priority’s topic, same raw', () => {
    const req = emailRequest({
      priority: 'critical',
      to: [{ email: 'a@gmail.com' }, { email: 'c@example.org' }],
      bcc: [{ email: 'b@Gmail.com' }],
      tags: ['welcome'],
      pool: 'transactional',
      listId: 'weekly',
    });
    const plan = checkRequest(req).envelope!;
    const out = dispatchRecords(req, plan, raw, { traceparent: '00-abc-def-01' });
    assert.deepEqual(
      out.map((r) => [r.topic, r.message.key]),
      [
        ['email.dispatch.critical', 'gmail.com'],
        ['email.dispatch.critical', 'example.org'],
      ],
    );
    const decoded = out.map((r) => EmailReadyForDispatchContract.decode(r.message.value));
    assert.deepEqual(decoded[0], {
      schemaVersion: 1,
      messageId: req.messageId,
      tenant: 'acme',
      priority: 'critical',
      domain: 'gmail.com',
      pool: 'transactional',
      envelope: { from: 'noreply@shop.example', to: ['a@gmail.com', 'b@gmail.com'] },
      fromDomain: 'shop.example',
      listId: 'weekly',
      acceptedAt: req.acceptedAt,
      tags: ['welcome'],
      attempt: 1,
      raw,
    });
    assert.deepEqual(decoded[1].envelope.to, ['c@example.org']);
    assert.equal(decoded[1].raw, raw);
    assert.deepEqual(out[0].message.headers, { traceparent: '00-abc-def-01' });
  });

  test('optional fields are left out when absent', () => {
    const req = emailRequest();
    const [record] = dispatchRecords(req, checkRequest(req).envelope!, raw);
    const decoded = EmailReadyForDispatchContract.decode(record.message.value);
    assert.equal('pool' in decoded, false);
    assert.equal('tags' in decoded, false);
    assert.equal('listId' in decoded, false);
    assert.equal(record.message.headers, undefined);
  });

  test('copies: one record per copy with its own envelope sender and raw, keyed by its domain', () => {
    const req = emailRequest({ to: [{ email: 'a@gmail.com' }, { email: 'b@gmail.com' }] });
    const plan = checkRequest(req).envelope!;
    const copies = [
      { domain: 'gmail.com', envelopeFrom: 'b-one@bounces.shop.example', to: ['a@gmail.com'], head: 'X-A: "1" \\ ü 😀\r\n', body: raw },
      { domain: 'gmail.com', envelopeFrom: 'b-two@bounces.shop.example', to: ['b@gmail.com'], head: 'X-A: 2\r\n', body: raw },
      { domain: 'gmail.com', envelopeFrom: 'b-three@bounces.shop.example', to: ['c@gmail.com'], head: `whole\r\n${raw}`, body: '' },
    ];
    const out = dispatchRecords(req, plan, copies, undefined, new Map([['gmail.com', 'site:google']]));
    const decoded = out.map((r) => EmailReadyForDispatchContract.decode(r.message.value));
    assert.deepEqual(out.map((r) => r.message.key), ['site:google', 'site:google', 'site:google']);
    assert.deepEqual(decoded.map((d) => [d.envelope.from, d.envelope.to, d.raw]), copies.map((c) => [c.envelopeFrom, c.to, c.head + c.body]));
  });
});
