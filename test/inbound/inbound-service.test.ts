/**
 * The inbound service end to end on real parts: an SMTP client (nodemailer) → the listener →
 * the embedded broker, with the events read back from `email.events`. Bounces of every sample
 * shape, complaints, mailto unsubscribes, STARTTLS, and hostile input.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { InboundHarness, DOMAIN, counter, fill, returnPath, sampleText, unsubscribeAddress, type Copy } from './inbound-harness.js';
import nodemailer from 'nodemailer';
import { waitFor } from '../helpers/broker.js';
import { createCertificateAuthority } from '../helpers/fake-internet/certificates.js';

let h: InboundHarness;
before(async () => {
  h = await InboundHarness.start();
});
after(() => h.stop());

const copy = (recipient: string, extra: Partial<Copy> = {}): Copy => ({ messageId: randomUUID(), tenant: 'acme', recipient, fromDomain: 'acme.com', listId: 'news', ...extra });
const messages = (kind: string, outcome: string) => counter(h.first.registry, 'postline_inbound_messages_total', { kind, outcome });
const refused = (reason: string) => counter(h.first.registry, 'postline_inbound_refused_total', { reason });

test('a Gmail DSN to a signed return path becomes one bounced event, classified, after which the sender gets 250', async () => {
  const c = copy('jane.doe@gmail.com');
  const reply = await h.send(h.first.port, [returnPath(c)], fill('gmail-dsn.eml', c, 'jane.doe@gmail.com'));
  assert.equal(reply.code, 250, reply.response);
  // 250 is sent only after the event is acknowledged, so it is already on the topic.
  const [event] = await h.waitForEvents(c.messageId);
  assert.equal(event.type, 'bounced');
  assert.equal(event.stage, 'inbound');
  assert.equal(event.tenant, 'acme');
  assert.deepEqual(event.recipients, ['jane.doe@gmail.com']);
  assert.equal(event.via, 'dsn');
  assert.equal(event.category, 'unknown-user');
  assert.equal(event.bounceClass, 'recipient');
  assert.equal(event.smtp?.code, 550);
  assert.equal(event.smtp?.enhanced, '5.1.1');
  assert.match(event.smtp?.message ?? '', /^550 5\.1\.1 The email account that you tried to reach does not exist/);
  assert.equal(event.smtp?.host, 'gmail-smtp-in.l.google.com');
  assert.equal(event.fromDomain, 'acme.com', 'from the verified X-Postline-Ref of the returned message');
  assert.equal(event.listId, 'news');
  assert.equal(event.domain, 'gmail.com');
});

test('every bounce shape (Microsoft, Yahoo, Postfix, Exim, qmail, an encoded DSN) yields the failed recipient\'s event', async () => {
  const cases: Array<[string, string, string]> = [
    ['outlook-dsn.eml', 'john.smith@outlook.com', '5.1.10'],
    ['yahoo-dsn.eml', 'mary@yahoo.com', '5.2.2'],
    ['postfix-dsn.eml', 'bob@example.net', '5.1.1'],
    ['exim-text.eml', 'erin@exim-host.org', '5.1.1'],
    ['qmail-text.eml', 'gina@qmail-host.org', '5.1.1'],
    ['odd-encoded-dsn.eml', 'ivan@legacy-gw.example.org', '5.2.1'],
  ];
  for (const [sample, recipient, status] of cases) {
    const c = copy(recipient);
    const reply = await h.send(h.first.port, [returnPath(c)], fill(sample, c, recipient));
    assert.equal(reply.code, 250, `${sample}: ${reply.response}`);
    const [event] = await h.waitForEvents(c.messageId);
    assert.equal(event.type, 'bounced', sample);
    assert.deepEqual(event.recipients, [recipient], sample);
    assert.equal(event.smtp?.enhanced, status, sample);
    assert.equal(event.via, 'dsn', sample);
  }
});

test('only the recipient the return path names counts; delay notices and auto-replies publish nothing', async () => {
  const before = { dropped: await messages('bounce', 'dropped'), ignored: await messages('bounce', 'ignored') };
  // The Postfix DSN names bob (failed) and carol (delayed): a return path signed for carol gets nothing.
  const carol = copy('carol@example.net');
  assert.equal((await h.send(h.first.port, [returnPath(carol)], fill('postfix-dsn.eml', carol, 'carol@example.net'))).code, 250);
  // A DSN for someone else entirely sent to a valid return path (a forwarded bounce, a guess).
  const other = copy('someone.else@example.org');
  assert.equal((await h.send(h.first.port, [returnPath(other)], fill('gmail-dsn.eml', other, 'not-in-the-sample'))).code, 250);
  const dave = copy('dave@example.net');
  assert.equal((await h.send(h.first.port, [returnPath(dave)], fill('postfix-delayed.eml', dave, 'dave@example.net'))).code, 250);
  const away = copy('away@example.org');
  assert.equal((await h.send(h.first.port, [returnPath(away)], sampleText('auto-reply.eml'))).code, 250);
  const garbage = copy('garbage@example.org');
  assert.equal((await h.send(h.first.port, [returnPath(garbage)], sampleText('garbage.eml'))).code, 250);
  assert.equal(await messages('bounce', 'dropped'), before.dropped + 2, 'carol (the failure is bob\'s) and someone else: dropped');
  assert.equal(await messages('bounce', 'ignored'), before.ignored + 3, 'a delay notice, an auto-reply, garbage: ignored');
  // A later marker event proves the reader has caught up past all of the above.
  const marker = copy('jane.doe@gmail.com');
  await h.send(h.first.port, [returnPath(marker)], fill('gmail-dsn.eml', marker, 'jane.doe@gmail.com'));
  await h.waitForEvents(marker.messageId);
  for (const c of [carol, other, dave, away, garbage]) assert.deepEqual(h.events(c.messageId), [], c.recipient);
});

test('a complaint report (ARF) to the FBL address becomes a complained event from the verified X-Postline-Ref', async () => {
  const c = copy('kate@yahoo.com', { listId: 'promos' });
  const reply = await h.send(h.first.port, [`fbl@${DOMAIN}`], fill('yahoo-arf.eml', c, 'kate@yahoo.com'), 'feedback@arf.mail.yahoo.com');
  assert.equal(reply.code, 250, reply.response);
  const [event] = await h.waitForEvents(c.messageId);
  assert.equal(event.type, 'complained');
  assert.equal(event.via, 'arf');
  assert.equal(event.category, 'abuse');
  assert.deepEqual(event.recipients, ['kate@yahoo.com']);
  assert.equal(event.tenant, 'acme');
  assert.equal(event.fromDomain, 'acme.com');
  assert.equal(event.listId, 'promos');
});

test('a redacted complaint is tied to its recipient through the signed return path when an address matches its hash, else dropped', async () => {
  const c = copy('liam@isp.example');
  const named = fill('redacted-arf.eml', c, 'never-present').replace('To: [redacted]', `To: ${c.recipient}`);
  assert.equal((await h.send(h.first.port, [`abuse@${DOMAIN}`], named)).code, 250);
  const [event] = await h.waitForEvents(c.messageId);
  assert.equal(event.type, 'complained');
  assert.equal(event.category, 'fraud');
  assert.deepEqual(event.recipients, ['liam@isp.example']);

  const dropped = await messages('complaint', 'dropped');
  const r = copy('mia@isp.example');
  assert.equal((await h.send(h.first.port, [`abuse@${DOMAIN}`], fill('redacted-arf.eml', r, 'never-present'))).code, 250);
  assert.equal(await messages('complaint', 'dropped'), dropped + 1);
});

test('a mailto unsubscribe becomes an unsubscribed event scoped to the list of its token', async () => {
  const c = copy('noah@example.com', { listId: 'weekly' });
  const reply = await h.send(h.first.port, [unsubscribeAddress(c)], 'Subject: unsubscribe\r\nFrom: noah@example.com\r\n\r\nunsubscribe\r\n', 'noah@example.com');
  assert.equal(reply.code, 250, reply.response);
  const [event] = await h.waitForEvents(c.messageId);
  assert.equal(event.type, 'unsubscribed');
  assert.equal(event.via, 'mailto');
  assert.deepEqual(event.recipients, ['noah@example.com']);
  assert.equal(event.listId, 'weekly');
  assert.equal(event.tenant, 'acme');
});

test('forged, unsigned, wrong-purpose and foreign recipients are refused at RCPT with 550 5.1.1', async () => {
  const c = copy('olga@example.com');
  const good = returnPath(c);
  const local = good.split('@')[0];
  const flipped = `${local.slice(0, 12)}${local[12] === 'a' ? 'b' : 'a'}${local.slice(13)}@${DOMAIN}`;
  const unsubscribeAsBounce = unsubscribeAddress(c).replace(/^u-/, 'b-');
  const otherKey = `b-${'a'.repeat(40)}@${DOMAIN}`;
  const before = await refused('unknown-recipient');
  for (const rcpt of [flipped, unsubscribeAsBounce, otherKey, `postmaster@${DOMAIN}`, good.replace(DOMAIN, 'elsewhere.example'), 'b-@bounces.example.com']) {
    const reply = await h.send(h.first.port, [rcpt], fill('gmail-dsn.eml', c, 'jane.doe@gmail.com'));
    assert.equal(reply.ok, false, rcpt);
    assert.equal(reply.code, 550, `${rcpt}: ${reply.response}`);
    assert.match(reply.response ?? '', /5\.1\.1/);
  }
  assert.equal(await refused('unknown-recipient'), before + 6);
  assert.deepEqual(h.events(c.messageId), []);
  // A bounce token still verifies after the forgery attempts (nothing is locked out).
  assert.equal((await h.send(h.first.port, [good], fill('gmail-dsn.eml', c, 'jane.doe@gmail.com'))).code, 250);
  await h.waitForEvents(c.messageId);
});

test('a message over the size limit is refused with 552 without being held, and the service serves on', async () => {
  const small = await h.inbound({ 'inbound.maxMessageBytes': 64 * 1024 });
  const c = copy('pat@example.com');
  const huge = fill('gmail-dsn.eml', c, 'jane.doe@gmail.com').replace('Hello Jane.', `${'x'.repeat(998)}\r\n`.repeat(8 * 1024));
  const reply = await h.send(small.port, [returnPath(c)], huge);
  assert.equal(reply.code, 552, reply.response);
  assert.equal(await counter(small.registry, 'postline_inbound_refused_total', { reason: 'too-large' }), 1);
  assert.equal((await h.send(small.port, [returnPath(c)], fill('gmail-dsn.eml', c, 'jane.doe@gmail.com'))).code, 250);
  await h.waitForEvents(c.messageId);
  assert.equal(h.events(c.messageId).length, 1);
});

test('a flood from one address hits the per-IP rate limit (421) and is counted', async () => {
  const limited = await h.inbound({ 'inbound.rateLimitMax': 3, 'inbound.rateLimitWindowSeconds': 3600 });
  const replies = [];
  for (let i = 0; i < 6; i++) {
    const c = copy(`flood${i}@example.com`);
    replies.push((await h.send(limited.port, [unsubscribeAddress(c)], 'Subject: unsubscribe\r\n\r\n.\r\n')).code);
  }
  assert.deepEqual(replies.slice(0, 3), [250, 250, 250]);
  for (const code of replies.slice(3)) assert.equal(code, 421);
  await waitFor(async () => (await counter(limited.registry, 'postline_inbound_refused_total', { reason: 'rate-limit' })) >= 3, 10_000, 'rate-limit refusals counted');
});

test('with a key and certificate configured, STARTTLS is offered and a bounce over TLS is recorded', async () => {
  const ca = await createCertificateAuthority();
  try {
    const cert = await ca.issue(['127.0.0.1']);
    const secured = await h.inbound({ 'inbound.tlsKeyFile': cert.keyFile, 'inbound.tlsCertFile': cert.certFile });
    const c = copy('tls.user@gmail.com');
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: secured.port, secure: false, requireTLS: true, tls: { ca: ca.caPem } });
    const info = await transport.sendMail({ envelope: { from: '', to: [returnPath(c)] }, raw: fill('gmail-dsn.eml', c, 'jane.doe@gmail.com') });
    transport.close();
    assert.match(info.response, /^250 /);
    const [event] = await h.waitForEvents(c.messageId);
    assert.equal(event.type, 'bounced');
  } finally {
    await ca.close();
  }
});
