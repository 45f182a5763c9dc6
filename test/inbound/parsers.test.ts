/** Table tests of the bounce and complaint parsers over the samples in test/inbound/samples/. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parseBounce, isPermanentFailure, type BounceRecipient } from '../../services/inbound/bounce-parser.js';
import { parseArf } from '../../services/inbound/arf-parser.js';

const samples = path.join(import.meta.dirname, 'samples');
export const sample = (name: string): Buffer => fs.readFileSync(path.join(samples, name));

type Expect = { kind: 'dsn' | 'non-standard'; recipients: Array<Partial<BounceRecipient> & { address: string; action: string; status: string }>; ref?: string };

const bounces: Record<string, Expect> = {
  'gmail-dsn.eml': { kind: 'dsn', ref: 'REF-TOKEN', recipients: [{ address: 'jane.doe@gmail.com', action: 'failed', status: '5.1.1', code: 550, remoteMta: 'gmail-smtp-in.l.google.com', diagnostic: "550 5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces. For more information, go to https://support.google.com/mail/?p=NoSuchUser d2-20020a05 - gsmtp" }] },
  'outlook-dsn.eml': { kind: 'dsn', ref: 'REF-TOKEN', recipients: [{ address: 'john.smith@outlook.com', action: 'failed', status: '5.1.10', code: 550, diagnostic: '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup' }] },
  'yahoo-dsn.eml': { kind: 'dsn', ref: 'REF-TOKEN', recipients: [{ address: 'mary@yahoo.com', action: 'failed', status: '5.2.2', code: 552, diagnostic: '552 1 Requested mail action aborted, mailbox full' }] },
  'postfix-dsn.eml': {
    kind: 'dsn',
    ref: 'REF-TOKEN',
    recipients: [
      { address: 'bob@example.net', action: 'failed', status: '5.1.1', code: 550, remoteMta: 'mx.example.net', diagnostic: '550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown in local recipient table' },
      { address: 'carol@example.net', action: 'delayed', status: '4.2.2', code: 452 },
    ],
  },
  'postfix-delayed.eml': { kind: 'dsn', recipients: [{ address: 'dave@example.net', action: 'delayed', status: '4.4.1' }] },
  'odd-encoded-dsn.eml': { kind: 'dsn', ref: 'REF-TOKEN', recipients: [{ address: 'ivan@legacy-gw.example.org', action: 'failed', status: '5.2.1', code: 550, diagnostic: '550 Mailbox disabled for this recipient' }] },
  'exim-text.eml': {
    kind: 'non-standard',
    ref: 'REF-TOKEN',
    recipients: [
      { address: 'erin@exim-host.org', action: 'failed', status: '5.1.1', code: 550, remoteMta: 'mail.exim-host.org', diagnostic: '550 5.1.1 <erin@exim-host.org>: Recipient address rejected: User unknown' },
      { address: 'frank@exim-host.org', action: 'failed', status: '5.0.0', diagnostic: 'mailbox is full: retry timeout exceeded' },
    ],
  },
  'qmail-text.eml': {
    kind: 'non-standard',
    ref: 'REF-TOKEN',
    recipients: [
      { address: 'gina@qmail-host.org', action: 'failed', status: '5.1.1', code: 550, remoteMta: '192.0.2.10', diagnostic: '550 5.1.1 <gina@qmail-host.org>... User unknown' },
      { address: 'hank@qmail-host.org', action: 'failed', status: '5.1.1', diagnostic: 'Sorry, no mailbox here by that name. (#5.1.1)' },
    ],
  },
};

for (const [file, want] of Object.entries(bounces)) {
  test(`parseBounce: ${file}`, async () => {
    const got = await parseBounce(sample(file));
    assert.ok(got, 'a bounce');
    assert.equal(got.kind, want.kind);
    assert.equal(got.recipients.length, want.recipients.length);
    want.recipients.forEach((r, i) => {
      for (const [k, v] of Object.entries(r)) assert.deepEqual(got.recipients[i][k as keyof BounceRecipient], v, `${r.address} ${k}`);
    });
    assert.equal(got.originalHeaders?.ref, want.ref);
    if (want.ref) assert.equal(got.originalHeaders?.returnPath, 'b-RETURNPATH@bounces.example.com');
  });
}

test('only failed recipients with a 5.x.x status are permanent failures', async () => {
  const postfix = (await parseBounce(sample('postfix-dsn.eml')))!;
  assert.deepEqual(postfix.recipients.map(isPermanentFailure), [true, false]);
  const delayed = (await parseBounce(sample('postfix-delayed.eml')))!;
  assert.deepEqual(delayed.recipients.map(isPermanentFailure), [false]);
});

test('not a bounce: an auto-reply, garbage MIME, a complaint report, an empty buffer', async () => {
  for (const file of ['auto-reply.eml', 'garbage.eml', 'yahoo-arf.eml']) assert.equal(await parseBounce(sample(file)), undefined, file);
  assert.equal(await parseBounce(Buffer.alloc(0)), undefined);
  assert.equal(await parseBounce(Buffer.from('\x00\xff\xfe'.repeat(1000), 'latin1')), undefined);
});

test('a DSN whose original message is an attachment still yields the original headers', async () => {
  const raw = sample('yahoo-dsn.eml').toString('utf8').replace('Content-Type: message/rfc822\n', 'Content-Type: message/rfc822\nContent-Disposition: attachment\n');
  assert.equal((await parseBounce(Buffer.from(raw)))?.originalHeaders?.ref, 'REF-TOKEN');
});

test('parseArf: Yahoo feedback report with the whole original message', async () => {
  assert.deepEqual(await parseArf(sample('yahoo-arf.eml')), {
    feedbackType: 'abuse',
    userAgent: 'Yahoo!-Mail-Feedback/2.0',
    originalRecipient: 'kate@yahoo.com',
    originalMailFrom: 'b-returnpath@bounces.example.com',
    arrivalDate: 'Thu, 3 Dec 2026 17:00:00 +0000',
    sourceIp: '192.0.2.25',
    reportedDomain: 'acme.com',
    originalHeaders: { messageId: '<msg-5@acme.com>', returnPath: 'b-RETURNPATH@bounces.example.com', from: 'Acme <news@acme.com>', to: 'kate@yahoo.com', subject: 'Your December newsletter', ref: 'REF-TOKEN' },
  });
});

test('parseArf: a redacted report with only the original headers', async () => {
  const arf = await parseArf(sample('redacted-arf.eml'));
  assert.equal(arf?.feedbackType, 'fraud');
  assert.equal(arf?.originalRecipient, undefined);
  assert.equal(arf?.originalHeaders?.returnPath, 'b-RETURNPATH@bounces.example.com');
});

test('parseArf: bounces and garbage are not complaints', async () => {
  for (const file of ['gmail-dsn.eml', 'garbage.eml', 'auto-reply.eml']) assert.equal(await parseArf(sample(file)), undefined, file);
});
