import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fitRecord, inboundMailId, inboundMailRecords } from './inbound-mail-records.js';
import type { InboundMail } from '../../shared/contracts/inbound-mail.js';

const message = { digest: 'ab'.repeat(32), size: 100, envelopeFrom: 'a@x.test', remote: { ip: '192.0.2.1', helo: 'x.test' }, receivedAt: new Date('2026-12-03T10:00:00Z') };
const parsed = { headers: [['Subject', 'hi']] as Array<[string, string]>, subject: 'hi', text: 't'.repeat(1000), html: 'h'.repeat(2000), attachments: [{ contentType: 'application/pdf', size: 3000, content: 'c'.repeat(4000) }] };
const auth = { spf: 'pass', dkim: 'none', dmarc: 'none' };

test('inboundMailRecords: one record per tenant with only its recipients, each once; ids differ by tenant and recipients, not by order', () => {
  const records = inboundMailRecords(
    [
      { tenant: 'acme', domain: 'a.test', address: 'x@a.test' },
      { tenant: 'acme/eu', domain: 'eu.test', address: 'y@eu.test' },
      { tenant: 'acme', domain: 'a2.test', address: 'z@a2.test' },
      { tenant: 'acme', domain: 'a.test', address: 'X@a.test' },
    ],
    message,
    parsed,
    auth,
  );
  assert.deepEqual(records.map((r) => [r.tenant, r.domain, r.envelope.to]), [['acme', 'a.test', ['x@a.test', 'z@a2.test']], ['acme/eu', 'eu.test', ['y@eu.test']]]);
  assert.notEqual(records[0].id, records[1].id);
  assert.equal(inboundMailId('acme', ['b', 'a'], message.digest), inboundMailId('acme', ['a', 'b'], message.digest));
  assert.notEqual(inboundMailId('acme', ['a'], message.digest), inboundMailId('acme/eu', ['a'], message.digest));
});

test('fitRecord drops attachment contents, then the HTML, then the text, until the record fits; undefined when nothing fits', () => {
  const [record] = inboundMailRecords([{ tenant: 'acme', domain: 'a.test', address: 'x@a.test' }], message, parsed, auth);
  const size = (r: InboundMail) => JSON.stringify(r).length;
  const full = size(record);
  assert.equal(fitRecord(record, full, size), record);
  const noContent = fitRecord(record, full - 1, size)!;
  assert.deepEqual([noContent.attachments[0].content, noContent.attachments[0].size, noContent.truncated], [undefined, 3000, { attachments: true }]);
  assert.equal(noContent.html?.length, 2000);
  const noHtml = fitRecord(record, size(noContent) - 1, size)!;
  assert.deepEqual([noHtml.html, noHtml.text?.length, noHtml.truncated], [undefined, 1000, { attachments: true, html: true }]);
  const noText = fitRecord(record, size(noHtml) - 1, size)!;
  assert.deepEqual([noText.text, noText.truncated], [undefined, { attachments: true, html: true, text: true }]);
  assert.equal(fitRecord(record, 10, size), undefined);
});
