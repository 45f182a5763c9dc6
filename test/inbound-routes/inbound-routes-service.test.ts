/**
 * Inbound routes at the inbound SMTP service, end to end on real parts: an SMTP client
 * (nodemailer) → the listener → `email.inbound` and `email.events` on the embedded broker, with
 * SPF, DKIM and DMARC checked by mailauth against a fake DNS. Routes are written to
 * `email.inbound-routes` as the API writes them; the service picks them up from the topic.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import nodemailer from 'nodemailer';
import type Mail from 'nodemailer/lib/mailer/index.js';
import { dkimSign } from 'mailauth/lib/dkim/sign.js';
import { RoutesHarness } from './routes-harness.js';
import { counter } from '../inbound/inbound-harness.js';
import { waitFor } from '../helpers/broker.js';

let h: RoutesHarness;
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });

before(async () => {
  h = await RoutesHarness.start();
  h.dns.txt('sender.test', 'v=spf1 ip4:127.0.0.1 -all');
  h.dns.txt('_dmarc.sender.test', 'v=DMARC1; p=reject');
  h.dns.txt('rsa1._domainkey.sender.test', `v=DKIM1; k=rsa; p=${rsa.publicKey.export({ type: 'spki', format: 'der' }).toString('base64')}`);
  h.dns.txt('spoofed.test', 'v=spf1 ip4:192.0.2.1 -all');
  h.dns.txt('_dmarc.spoofed.test', 'v=DMARC1; p=reject');
  await h.book.claim('acme', 'in.acme.test');
  await h.book.claim('acme/eu', 'in.acme-eu.test', ['support']);
  await h.waitRouted(h.first.port, 'anyone@in.acme.test');
  await h.waitRouted(h.first.port, 'support@in.acme-eu.test');
});
after(() => h.stop());

/** A message as nodemailer composes it (CRLF line ends). */
async function compose(mail: Mail.Options): Promise<Buffer> {
  const info = await nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'windows' }).sendMail(mail);
  return info.message as Buffer;
}

async function signed(raw: Buffer): Promise<Buffer> {
  const { signatures } = await dkimSign(raw, {
    signatureData: [{ signingDomain: 'sender.test', selector: 'rsa1', privateKey: rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, algorithm: 'rsa-sha256' }],
  } as never);
  return Buffer.concat([Buffer.from(signatures), raw]);
}

const idOf = (response: string | undefined): string => /accepted as (in_\S+)/.exec(response ?? '')?.[1] ?? assert.fail(`no id in ${response}`);

test('RCPT: unrouted domains and local parts outside a route’s filter stay 550 5.1.1; routed addresses are accepted', async () => {
  assert.equal(await h.rcpt(h.first.port, 'someone@unrouted.test'), 550);
  assert.equal(await h.rcpt(h.first.port, 'sales@in.acme-eu.test'), 550, 'acme/eu takes only support@');
  assert.equal(await h.rcpt(h.first.port, 'Support+ticket-9@IN.acme-eu.test'), 250);
  assert.equal(await h.rcpt(h.first.port, 'anything@in.acme.test'), 250);
  assert.ok((await counter(h.first.registry, 'postline_inbound_refused_total', { reason: 'unknown-recipient' })) >= 2);
});

test('a DKIM-signed mail becomes one InboundMail record and a received event, SPF/DKIM/DMARC pass, before the 250', async () => {
  const attachment = Buffer.from('%PDF-1.4 not really a pdf\n'.repeat(20));
  const raw = await signed(
    await compose({
      from: 'Ann Sender <ann@sender.test>',
      to: 'Help <help@in.acme.test>',
      cc: 'cc@elsewhere.test',
      replyTo: 'replies@sender.test',
      subject: 'Order #42 — ça marche',
      text: 'Hello, where is my order?',
      html: '<p>Hello, where is my <b>order</b>?</p>',
      messageId: '<order-42@sender.test>',
      inReplyTo: '<prev@in.acme.test>',
      references: ['<first@in.acme.test>', '<prev@in.acme.test>'],
      attachments: [{ filename: 'invoice.pdf', content: attachment, contentType: 'application/pdf' }],
    }),
  );
  const reply = await h.send(h.first.port, { from: 'bounce@sender.test', to: ['help@in.acme.test'] }, raw);
  assert.equal(reply.code, 250, reply.response);
  const id = idOf(reply.response);
  // 250 only once durable: the record is on the topic.
  const [record] = await h.waitForRecords((r) => r.id === id);
  assert.equal(record.tenant, 'acme');
  assert.equal(record.domain, 'in.acme.test');
  assert.deepEqual(record.envelope, { from: 'bounce@sender.test', to: ['help@in.acme.test'] });
  assert.deepEqual(record.remote, { ip: '127.0.0.1', helo: 'mta.sender.test' });
  assert.equal(record.subject, 'Order #42 — ça marche');
  assert.deepEqual(record.from, [{ address: 'ann@sender.test', name: 'Ann Sender' }]);
  assert.deepEqual(record.to, [{ address: 'help@in.acme.test', name: 'Help' }]);
  assert.deepEqual(record.cc, [{ address: 'cc@elsewhere.test' }]);
  assert.deepEqual(record.replyTo, [{ address: 'replies@sender.test' }]);
  assert.equal(record.messageId, '<order-42@sender.test>');
  assert.equal(record.inReplyTo, '<prev@in.acme.test>');
  assert.deepEqual(record.references, ['<first@in.acme.test>', '<prev@in.acme.test>']);
  assert.match(record.text ?? '', /where is my order/);
  assert.match(record.html ?? '', /<b>order<\/b>/);
  assert.equal(record.attachments.length, 1);
  assert.deepEqual({ ...record.attachments[0], content: undefined }, { filename: 'invoice.pdf', contentType: 'application/pdf', size: attachment.length, content: undefined });
  assert.ok(Buffer.from(record.attachments[0].content ?? '', 'base64').equals(attachment));
  assert.deepEqual(record.auth, { spf: 'pass', dkim: 'pass', dmarc: 'pass' });
  assert.equal(record.size, raw.length);
  assert.equal(record.truncated, undefined);
  assert.ok(record.headers.some(([name, value]) => name === 'DKIM-Signature' && /d=sender\.test/.test(value) && !value.includes('\n')), 'headers in order, unfolded');

  const event = await h.waitForEvent(id);
  assert.equal(event.type, 'received');
  assert.equal(event.stage, 'inbound');
  assert.equal(event.tenant, 'acme');
  assert.deepEqual(event.recipients, ['help@in.acme.test']);
  assert.equal(event.domain, 'in.acme.test');
  assert.equal(event.fromDomain, 'sender.test');
  assert.equal(event.reason, 'spf=pass dkim=pass dmarc=pass');
  assert.equal(await counter(h.first.registry, 'postline_inbound_received_total', { tenant: 'acme', verdict: 'pass' }), 1);

  // The sender retrying the same bytes (after a lost 250) produces the same id: receivers can drop the repeat.
  const again = await h.send(h.first.port, { from: 'bounce@sender.test', to: ['help@in.acme.test'] }, raw);
  assert.equal(idOf(again.response), id);
});

test('a spoofed From fails SPF and DMARC and is still delivered, with the verdicts', async () => {
  const raw = await compose({ from: 'ceo@spoofed.test', to: 'pay@in.acme.test', subject: 'Urgent wire', text: 'Pay now' });
  const reply = await h.send(h.first.port, { from: 'ceo@spoofed.test', to: ['pay@in.acme.test'] }, raw);
  assert.equal(reply.code, 250, reply.response);
  const [record] = await h.waitForRecords((r) => r.id === idOf(reply.response));
  assert.deepEqual(record.auth, { spf: 'fail', dkim: 'none', dmarc: 'fail' });
  assert.equal(await counter(h.first.registry, 'postline_inbound_received_total', { tenant: 'acme', verdict: 'fail' }), 1);
});

test('one mail to two tenants’ domains: one record per tenant, each with only its own recipients', async () => {
  const raw = await compose({ from: 'ann@sender.test', to: ['a@in.acme.test', 'support@in.acme-eu.test', 'b@in.acme.test'], subject: 'Both of you', text: 'Hi both' });
  const reply = await h.send(h.first.port, { from: 'ann@sender.test', to: ['a@in.acme.test', 'support@in.acme-eu.test', 'b@in.acme.test'] }, raw);
  assert.equal(reply.code, 250, reply.response);
  const records = await h.waitForRecords((r) => r.subject === 'Both of you', 2);
  assert.equal(records.length, 2);
  const acme = records.find((r) => r.tenant === 'acme')!;
  const eu = records.find((r) => r.tenant === 'acme/eu')!;
  assert.deepEqual(acme.envelope.to, ['a@in.acme.test', 'b@in.acme.test']);
  assert.deepEqual(eu.envelope.to, ['support@in.acme-eu.test']);
  assert.equal(eu.domain, 'in.acme-eu.test');
  assert.notEqual(acme.id, eu.id);
  assert.equal((await h.waitForEvent(eu.id)).tenant, 'acme/eu');
});

test('limits: text and HTML cut on a character boundary, attachments over their own or the total limit keep only metadata', async () => {
  const small = await h.inbound({ 'inboundRoutes.maxTextBytes': 1024, 'inboundRoutes.maxAttachmentBytes': 2000, 'inboundRoutes.maxAttachmentsTotalBytes': 3000 });
  await h.waitRouted(small.port, 'x@in.acme.test');
  const text = 'é'.repeat(3000);
  const raw = await compose({
    from: 'ann@sender.test',
    to: 'big@in.acme.test',
    subject: 'Big one',
    text,
    html: `<p>${'ü'.repeat(3000)}</p>`,
    attachments: [
      { filename: 'a.bin', content: Buffer.alloc(1500, 1) },
      { filename: 'b.bin', content: Buffer.alloc(2500, 2) },
      { filename: 'c.bin', content: Buffer.alloc(1600, 3) },
      { filename: 'd.bin', content: Buffer.alloc(1000, 4) },
    ],
  });
  const reply = await h.send(small.port, { from: 'ann@sender.test', to: ['big@in.acme.test'] }, raw);
  assert.equal(reply.code, 250, reply.response);
  const [record] = await h.waitForRecords((r) => r.id === idOf(reply.response));
  assert.deepEqual(record.truncated, { text: true, html: true, attachments: true });
  assert.ok(Buffer.byteLength(record.text!) <= 1024 && Buffer.byteLength(record.text!) >= 1022);
  assert.ok(text.startsWith(record.text!), 'a prefix, no broken character');
  assert.ok(Buffer.byteLength(record.html!) <= 1024);
  assert.deepEqual(
    record.attachments.map((a) => [a.filename, a.size, a.content !== undefined]),
    [
      ['a.bin', 1500, true],
      ['b.bin', 2500, false],
      ['c.bin', 1600, false],
      ['d.bin', 1000, true],
    ],
  );
});

test('a 1.2 MB attachment is inlined: the record (over 1.5 MB of JSON, above Kafka’s 1 MiB default) fits email.inbound', async () => {
  const big = Buffer.alloc(1200 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31) % 251;
  const raw = await compose({ from: 'ann@sender.test', to: 'files@in.acme.test', subject: 'The big file', text: 'attached', attachments: [{ filename: 'big.bin', content: big }] });
  const reply = await h.send(h.first.port, { from: 'ann@sender.test', to: ['files@in.acme.test'] }, raw);
  assert.equal(reply.code, 250, reply.response);
  const [record] = await h.waitForRecords((r) => r.id === idOf(reply.response));
  assert.ok(Buffer.from(record.attachments[0].content ?? '', 'base64').equals(big));
});

test('a record larger than email.inbound takes keeps the attachment’s metadata only', async () => {
  // renderer.maxMessageBytes sizes email.inbound's record limit (about 1 MiB here).
  const tight = await h.inbound({ 'renderer.maxMessageBytes': 1024 });
  await h.waitRouted(tight.port, 'files@in.acme.test');
  const raw = await compose({ from: 'ann@sender.test', to: 'files@in.acme.test', subject: 'Too big to inline', text: 'attached', attachments: [{ filename: 'big.bin', content: Buffer.alloc(1200 * 1024, 7) }] });
  const reply = await h.send(tight.port, { from: 'ann@sender.test', to: ['files@in.acme.test'] }, raw);
  assert.equal(reply.code, 250, reply.response);
  const [record] = await h.waitForRecords((r) => r.id === idOf(reply.response));
  assert.deepEqual([record.attachments[0].size, record.attachments[0].content, record.truncated, record.text?.trim()], [1200 * 1024, undefined, { attachments: true }, 'attached']);
});

test('hostile input: huge headers and too many parts are 550 5.6.0, broken MIME is delivered as far as it reads; the service serves on', async () => {
  const port = h.first.port;
  const send = (raw: string | Buffer) => h.send(port, { from: 'x@sender.test', to: ['hostile@in.acme.test'] }, raw);
  const hugeHeaders = `From: x@sender.test\r\nTo: hostile@in.acme.test\r\nSubject: huge\r\n${'X-Filler: '.concat('a'.repeat(990), '\r\n').repeat(300)}\r\nbody\r\n`;
  const hugeReply = await send(hugeHeaders);
  assert.equal(hugeReply.code, 550, hugeReply.response);
  assert.match(hugeReply.response ?? '', /5\.6\.0/);
  const parts = Array.from({ length: 1200 }, (_, i) => `--b\r\nContent-Type: text/plain\r\n\r\npart ${i}\r\n`).join('');
  const manyReply = await send(`From: x@sender.test\r\nSubject: many\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n${parts}--b--\r\n`);
  assert.equal(manyReply.code, 550, manyReply.response);
  const nested = `${'Content-Type: multipart/mixed; boundary="n"\r\n\r\n--n\r\n'.repeat(300)}Content-Type: text/plain\r\n\r\ndeep\r\n`;
  const broken = [
    'From: x@sender.test\r\nSubject: unclosed\r\nContent-Type: multipart/mixed; boundary="zz"\r\n\r\n--zz\r\nContent-Type: text/plain\r\n\r\nno closing boundary\r\n',
    'From: x@sender.test\r\nSubject: bad base64\r\nContent-Type: application/octet-stream; name=x.bin\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment\r\n\r\n!!!not*base64@@@\r\n',
    'From: x@sender.test\r\nSubject: =?x-unknown?B?////?=\r\nContent-Type: text/plain; charset=x-no-such-charset\r\n\r\n\u0000\u0001\u00ff binary\r\n',
    'no headers at all, only text\r\n',
    `From: x@sender.test\r\nSubject: nested\r\nMIME-Version: 1.0\r\n${nested}`,
    Buffer.from(Array.from({ length: 20_000 }, (_, i) => (i * 7919) % 256)),
  ];
  for (const raw of broken) {
    const reply = await send(raw);
    assert.ok(reply.code === 250 || (reply.code === 550 && /5\.6\.0/.test(reply.response ?? '')), `${String(raw).slice(0, 40)}: ${reply.code} ${reply.response}`);
  }
  assert.ok((await counter(h.first.registry, 'postline_inbound_refused_total', { reason: 'unparseable' })) >= 2);
  const fine = await send(await compose({ from: 'x@sender.test', to: 'hostile@in.acme.test', subject: 'after the storm', text: 'still here' }));
  assert.equal(fine.code, 250, fine.response);
});

test('broker down → 451 (never 250 for an unrecorded mail); broker back → 250 and the record', async () => {
  const inbound = await h.inbound({ 'inbound.publishTimeoutMs': 1000 });
  await h.waitRouted(inbound.port, 'ops@in.acme.test');
  const raw = await compose({ from: 'ann@sender.test', to: 'ops@in.acme.test', subject: 'During the outage', text: 'hello' });
  await h.stopBroker();
  const down = await h.send(inbound.port, { from: 'ann@sender.test', to: ['ops@in.acme.test'] }, raw);
  assert.equal(down.code, 451, down.response);
  assert.equal(await counter(inbound.registry, 'postline_inbound_messages_total', { kind: 'route', outcome: 'retry' }), 1);
  await h.restartBroker();
  await waitFor(async () => (await h.send(inbound.port, { from: 'ann@sender.test', to: ['ops@in.acme.test'] }, raw)).code === 250, 60_000, 'the retried mail to be accepted');
  const [record] = await h.waitForRecords((r) => r.subject === 'During the outage');
  assert.equal(record.tenant, 'acme');
});

test('a released route stops accepting mail', async () => {
  await h.book.claim('acme', 'short-lived.acme.test');
  await h.waitRouted(h.first.port, 'x@short-lived.acme.test');
  assert.equal(await h.book.release('acme', 'short-lived.acme.test'), true);
  await h.waitRouted(h.first.port, 'x@short-lived.acme.test', false);
});
