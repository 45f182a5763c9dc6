import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { simpleParser, type AddressObject } from 'mailparser';
import MailComposer from 'nodemailer/lib/mail-composer';
import { buildMessage, collect, messageIdHeader } from './mime-message.js';
import { emailRequest } from '../../test/renderer/email-requests.js';

const addresses = (a: AddressObject | AddressObject[] | undefined) => (Array.isArray(a) ? a : a ? [a] : []).flatMap((x) => x.value.map((v) => ({ name: v.name, address: v.address })));

describe('buildMessage', () => {
  test('a full message parses back to what was asked for', async () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 3, 255]);
    const req = emailRequest({
      messageId: 'msg-123',
      from: { email: 'orders@bücher.de', name: 'Bücher Shop' },
      to: [{ email: 'alice@example.org', name: 'Alice Ä' }, { email: 'bob@gmail.com' }],
      cc: [{ email: 'carol@example.org', name: 'Carol' }],
      bcc: [{ email: 'secret@hidden.example' }],
      replyTo: [{ email: 'support@bücher.de' }],
      headers: { 'X-Campaign': 'spring ☀', 'List-Id': '<news.buecher.de>' },
      attachments: [
        { filename: 'invoice.txt', content: Buffer.from('total: 42 €\n').toString('base64'), contentType: 'text/plain' },
        { filename: 'logo.png', content: png.toString('base64'), contentId: 'logo@shop' },
      ],
    });
    const content = { subject: 'Ihre Bestellung – danke! 🎉', html: '<p>Hallo <b>Alice</b></p>\n<img src="cid:logo@shop">', text: 'Hallo Alice\nZeile 2' };
    const { raw, messageIdHeader: mid } = await buildMessage(req, content, 'xn--bcher-kva.de');
    // skipImageLinks: keep cid: references as sent instead of inlining them as data: URLs.
    const mail = await simpleParser(raw, { skipImageLinks: true });

    assert.equal(mid, '<msg-123@xn--bcher-kva.de>');
    assert.equal(mail.messageId, mid);
    assert.equal(mail.subject, content.subject);
    assert.equal(mail.date?.toISOString(), '2026-03-01T12:00:00.000Z');
    // The header carries the punycode domain; mailparser shows it decoded.
    assert.match(raw.toString(), /^From: .*<orders@xn--bcher-kva\.de>\r$/m);
    assert.deepEqual(addresses(mail.from), [{ name: 'Bücher Shop', address: 'orders@bücher.de' }]);
    assert.deepEqual(addresses(mail.to), [
      { name: 'Alice Ä', address: 'alice@example.org' },
      { name: '', address: 'bob@gmail.com' },
    ]);
    assert.deepEqual(addresses(mail.cc), [{ name: 'Carol', address: 'carol@example.org' }]);
    assert.deepEqual(addresses(mail.replyTo), [{ name: '', address: 'support@bücher.de' }]);
    assert.equal(mail.bcc, undefined);
    assert.doesNotMatch(raw.toString(), /secret@hidden|^bcc:/im, 'bcc recipients appear nowhere in the message');
    // Non-ASCII custom header values are RFC 2047 encoded (mailparser leaves unknown headers encoded).
    assert.equal(mail.headers.get('x-campaign'), '=?UTF-8?Q?spring_=E2=98=80?=');
    assert.match(raw.toString(), /^List-ID: <news\.buecher\.de>\r$/m);
    assert.equal(mail.text?.replace(/\r\n/g, '\n').trim(), content.text);
    assert.equal((mail.html as string).replace(/\r\n/g, '\n').trim(), content.html);
    const byName = new Map(mail.attachments.map((a) => [a.filename, a]));
    assert.equal(byName.get('invoice.txt')?.content.toString(), 'total: 42 €\n');
    assert.equal(byName.get('invoice.txt')?.contentType, 'text/plain');
    assert.deepEqual(byName.get('logo.png')?.content, png);
    assert.equal(byName.get('logo.png')?.cid, 'logo@shop');
    assert.equal(byName.get('logo.png')?.contentType, 'image/png');
  });

  test('text + html is a multipart/alternative; html alone is a single text/html part', async () => {
    const both = (await buildMessage(emailRequest(), { subject: 's', html: '<p>h</p>', text: 't' }, 'shop.example')).raw.toString();
    assert.match(both, /^Content-Type: multipart\/alternative/m);
    assert.match(both, /^Content-Type: text\/plain/m);
    const htmlOnly = (await buildMessage(emailRequest(), { subject: 's', html: '<p>h</p>' }, 'shop.example')).raw.toString();
    assert.match(htmlOnly, /^Content-Type: text\/html/m);
    assert.doesNotMatch(htmlOnly, /text\/plain|multipart/);
  });

  test('the same request renders to the same bytes (safe to re-render after a crash)', async () => {
    const req = emailRequest({ attachments: [{ filename: 'a.txt', content: 'aGVsbG8=' }] });
    const content = { subject: 's', html: '<p>h</p>', text: 't' };
    const a = await buildMessage(req, content, 'shop.example');
    const b = await buildMessage(req, content, 'shop.example');
    assert.deepEqual(a.raw, b.raw);
    const other = await buildMessage({ ...req, messageId: 'another' }, content, 'shop.example');
    assert.notDeepEqual(other.raw, a.raw);
  });

  test('line breaks are CRLF everywhere, whatever the input used', async () => {
    const { raw } = await buildMessage(emailRequest(), { subject: 's', html: '<p>a</p>\n<p>b</p>\r<p>c</p>', text: 'one\ntwo\r\nthree\rfour' }, 'shop.example');
    const s = raw.toString();
    assert.doesNotMatch(s, /[^\r]\n/, 'no bare LF');
    assert.doesNotMatch(s, /\r(?!\n)/, 'no bare CR');
    assert.equal((await simpleParser(raw)).text?.trim(), 'one\ntwo\nthree\nfour');
  });

  test('a data-driven subject cannot add a header', async () => {
    const { raw } = await buildMessage(emailRequest(), { subject: 'Hi\r\nBcc: victim@example.org', text: 't' }, 'shop.example');
    const mail = await simpleParser(raw);
    assert.equal(mail.bcc, undefined);
    assert.doesNotMatch(raw.toString(), /^Bcc:/im);
  });
});

describe('collect', () => {
  // MimeNode#build() is the reference: collect() must give its bytes for every shape of message.
  const date = new Date('2026-03-01T12:00:00Z');
  const common = { from: 'Shop <shop@example.com>', to: 'a@example.org', messageId: '<m@example.com>', date, baseBoundary: 'b0b0b0', disableFileAccess: true, disableUrlAccess: true };
  const shapes: Array<[string, ConstructorParameters<typeof MailComposer>[0]]> = [
    ['text only', { ...common, subject: 's', text: 'plain\r\nlines' }],
    ['html only, non-ASCII and a long line', { ...common, subject: 'Grüße 🎉', html: `<p>${'é'.repeat(300)}</p>` }],
    ['text + html', { ...common, subject: 's', text: 't', html: '<p>h</p>' }],
    ['attachments and inline images', { ...common, subject: 's', text: 't', html: '<img src="cid:x">', attachments: [{ filename: 'a.bin', content: Buffer.alloc(5000, 7) }, { filename: 'x.png', content: 'iVBORw0K', encoding: 'base64', cid: 'x' }] }],
    // 7bit bodies are written as they are: build() adds LF after a final CR, CRLF after anything else but LF.
    ['a 7bit body ending in a lone CR', { ...common, subject: 's', text: 'ends with CR\r' }],
    ['a 7bit body ending without a line break', { ...common, subject: 's', text: 'no break' }],
    ['a 7bit body ending in a bare LF', { ...common, subject: 's', text: 'ends with LF\n' }],
    ['no body at all', { ...common, subject: 's' }],
    ['custom headers, cc, reply-to', { ...common, subject: 's', text: 't', cc: 'c@example.org', replyTo: 'r@example.org', headers: { 'X-A': 'ü', 'List-Id': '<l.example>' } }],
    ['a newline option (left to build())', { ...common, subject: 's', text: 'a\r\nb', newline: '\n' }],
  ];
  for (const [name, mail] of shapes) {
    test(`${name}: the same bytes as build()`, async () => {
      const expected = await new MailComposer(mail).compile().build();
      const got = await collect(new MailComposer(mail).compile());
      assert.equal(got.toString('latin1'), expected.toString('latin1'));
    });
  }

  test('a node that cannot be written rejects', async () => {
    // disableFileAccess: a path as content is refused inside stream().
    const node = new MailComposer({ ...common, attachments: [{ path: '/etc/hostname' }] }).compile();
    await assert.rejects(collect(node), /File access rejected/);
  });
});

describe('messageIdHeader', () => {
  const cases: Array<[string, RegExp]> = [
    ['0192f0e4-7b1c-7c3e-9a55-3f1c2d4e5f60', /^<0192f0e4-7b1c-7c3e-9a55-3f1c2d4e5f60@shop\.example>$/],
    ['a.b+c', /^<a\.b\+c@shop\.example>$/],
    ['has space', /^<[0-9a-f]{32}@shop\.example>$/],
    ['a<b>@c', /^<[0-9a-f]{32}@shop\.example>$/],
    ['trailing.', /^<[0-9a-f]{32}@shop\.example>$/],
  ];
  for (const [id, re] of cases) test(`${JSON.stringify(id)}`, () => assert.match(messageIdHeader(id, 'shop.example'), re));
  test('a replaced id is stable', () => assert.equal(messageIdHeader('has space', 'd'), messageIdHeader('has space', 'd')));
});
