/**
 * The SMTP gateway end to end: nodemailer (STARTTLS on the submission port, implicit TLS on the
 * submissions port) → gateway → embedded broker → renderer (raw path, DKIM and feedback copies
 * on) → dispatcher → an SMTP sink as relay; a raw socket for the protocol edges. Tenants `acme`
 * and `acme/eu` (prefixes of each other) each send only from their own domain.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { simpleParser } from 'mailparser';
import { waitFor } from '../helpers/broker.js';
import { Topics } from '../../shared/topics.js';
import { FeedbackKeyring, tokenOfLocalPart } from '../../shared/feedback/feedback-token.js';
import { RawEmailRequestedContract, type RawEmailRequested } from '../../shared/contracts/email-requested.js';
import { runDkimCommand } from '../../services/dkim-command.js';
import { DOMAINS, GatewayHarness, KEYS, READ_ONLY_KEY } from './gateway-harness.js';
import { SmtpClient } from './smtp-client.js';

const FEEDBACK_KEY = { id: 1, secret: 'gateway-e2e-feedback-secret-0123456789ab' };
const keyring = new FeedbackKeyring([FEEDBACK_KEY]);
const keysDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gateway-dkim-'));
const dnsRecords = new Map<string, string[]>();
let h: GatewayHarness;

/** A header of a raw message, unfolded; undefined when absent. */
function header(raw: Buffer, name: string): string | undefined {
  const head = raw.toString('utf8').split('\r\n\r\n')[0].replace(/\r\n[ \t]+/g, ' ');
  return head.split('\r\n').find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`))?.slice(name.length + 1).trim();
}

const resolver = async (name: string, rr: string): Promise<string[][]> => {
  const r = rr === 'TXT' ? dnsRecords.get(name) : undefined;
  if (r) return [r];
  throw Object.assign(new Error(`no ${rr} for ${name}`), { code: 'ENOTFOUND' });
};

before(async () => {
  const out: string[] = [];
  assert.equal(await runDkimCommand(['keygen', '--domain', DOMAINS.acme, '--selector', 'gw1', '--type', 'ed25519', '--dir', keysDir], { out: (l) => out.push(l), err: () => {}, env: {} }), 0);
  dnsRecords.set(`gw1._domainkey.${DOMAINS.acme}`, [...out.join('\n').matchAll(/"([^"]*)"/g)].map((m) => m[1]));
  h = await GatewayHarness.start({
    'renderer.dkim.keysDir': keysDir,
    'feedback.keys': [FEEDBACK_KEY],
    'feedback.returnPathDomain': 'bounces.acme.test',
    'feedback.unsubscribeUrl': 'https://mail.acme.test',
    'smtpGateway.maxMessageBytes': 256 * 1024,
  });
});

after(async () => {
  await h?.stop();
  fs.rmSync(keysDir, { recursive: true, force: true });
});

test('STARTTLS + AUTH PLAIN: a bulk message with Bcc reaches every envelope recipient, signed, with feedback copies and the control headers honoured and stripped', async () => {
  const res = await h.send(KEYS.acme, {
    from: 'Acme News <news@acme.test>',
    to: 'ann@example.org',
    cc: 'bob@example.net',
    bcc: 'carl@example.org',
    subject: 'Through the gateway',
    text: 'Grüße aus dem Gateway',
    html: '<p>Grüße aus dem <b>Gateway</b></p>',
    messageId: '<client-1@acme.test>',
    headers: { 'X-Postline-Priority': 'bulk', 'X-Postline-Tags': 'news, weekly', 'X-Postline-List-Id': 'weekly' },
  });
  assert.ok(res.ok, res.response);
  assert.match(res.response, /^250 2\.0\.0 queued as \S+/);
  const id = res.messageId;

  // The record is on the bulk lane: the raw message and its envelope, Bcc only in the envelope.
  const record = await waitFor(
    () => h.reader.records.filter((r) => r.topic === Topics.requestedFor('bulk')).map((r) => RawEmailRequestedContract.decode(r.message.value)).find((r: RawEmailRequested) => r.messageId === id),
    10_000,
    'the raw record on email.requested.bulk',
  );
  assert.deepEqual([record.tenant, record.priority, record.tags, record.listId], ['acme', 'bulk', ['news', 'weekly'], 'weekly']);
  assert.deepEqual([...record.envelope.to].sort(), ['ann@example.org', 'bob@example.net', 'carl@example.org']);
  const queued = Buffer.from(record.raw, 'base64');
  assert.equal(header(queued, 'Bcc'), undefined, 'Bcc stripped before queueing');
  assert.equal(header(queued, 'X-Postline-Priority'), undefined);

  for (const rcpt of ['ann@example.org', 'bob@example.net', 'carl@example.org']) {
    const [msg] = await waitFor(() => (h.sink.messagesTo(rcpt).length ? h.sink.messagesTo(rcpt) : undefined), 60_000, `the copy for ${rcpt}`);
    assert.deepEqual(msg.to, [rcpt], 'one copy per recipient (feedback on)');
    const [local, domain] = msg.from.split('@');
    assert.equal(domain, 'bounces.acme.test', 'a signed return path as MAIL FROM');
    assert.equal(keyring.verify(tokenOfLocalPart(local, 'b-')!, 'return-path')?.messageId, id);
    assert.equal(keyring.verify(header(msg.raw, 'X-Postline-Ref')!, 'ref')?.recipient, rcpt);
    assert.match(header(msg.raw, 'List-Unsubscribe') ?? '', /^<https:\/\/mail\.acme\.test\/u\/[a-z2-7]+>/, 'bulk: List-Unsubscribe added');
    for (const stripped of ['Bcc', 'X-Postline-Priority', 'X-Postline-Tags', 'X-Postline-List-Id']) assert.equal(header(msg.raw, stripped), undefined, `${stripped} stripped`);
    assert.equal(header(msg.raw, 'Message-ID'), '<client-1@acme.test>', "the client's Message-ID kept");
    const parsed = await simpleParser(msg.raw);
    assert.equal(parsed.text?.trim(), 'Grüße aus dem Gateway');
    assert.equal(parsed.subject, 'Through the gateway');
    const { results } = await dkimVerify(msg.raw, { resolver });
    assert.equal(results[0]?.status.result, 'pass', JSON.stringify(results[0]?.status));
    assert.equal(results[0].signingDomain, DOMAINS.acme);
  }
  const accepted = await h.waitForEvent('accepted', id);
  assert.deepEqual([accepted.tenant, accepted.priority, accepted.tags, accepted.recipients?.length], ['acme', 'bulk', ['news', 'weekly'], 3]);
  const rendered = await h.waitForEvent('rendered', id);
  assert.deepEqual(rendered.dkim, { domain: DOMAINS.acme, selector: 'gw1' });
  assert.equal(rendered.domainCount, 3);
  await waitFor(() => h.events('sent', id).length === 3, 30_000, 'three sent events');
});

test('implicit TLS + AUTH LOGIN: tenant acme/eu sends from its own domain; a message without Message-ID gets one; transactional by default', async () => {
  const transport = h.transport(KEYS['acme/eu'], { implicitTls: true, method: 'LOGIN', user: 'acme/eu' });
  try {
    const raw = 'From: EU Desk <desk@eu.acme.test>\r\nTo: dora@example.org\r\nSubject: Hallo\r\n\r\nplain body\r\n';
    const info = await transport.sendMail({ envelope: { from: 'desk@eu.acme.test', to: ['dora@example.org'] }, raw });
    const id = /queued as (\S+)/.exec(info.response)![1];
    const [msg] = await waitFor(() => (h.sink.messagesTo('dora@example.org').length ? h.sink.messagesTo('dora@example.org') : undefined), 60_000, 'the message at the relay');
    assert.match(header(msg.raw, 'Message-ID') ?? '', new RegExp(`^<${id}@eu\\.acme\\.test>$`));
    assert.ok(header(msg.raw, 'Date'), 'Date added');
    assert.equal(header(msg.raw, 'List-Unsubscribe'), undefined, 'transactional: no List-Unsubscribe');
    const accepted = await h.waitForEvent('accepted', id);
    assert.deepEqual([accepted.tenant, accepted.priority], ['acme/eu', 'transactional']);
  } finally {
    transport.close();
  }
});

test('From domains are checked per tenant exactly (acme and acme/eu own nothing of each other); MAIL FROM too', async () => {
  const fromAcme = await h.send(KEYS['acme/eu'], { from: 'x@acme.test', to: 'eve@example.org', subject: 's', text: 't', envelope: { from: 'desk@eu.acme.test', to: ['eve@example.org'] } });
  assert.equal(fromAcme.ok, false);
  assert.equal(fromAcme.ok === false && fromAcme.code, 550);
  assert.match(fromAcme.response, /5\.7\.1 From header: the domain "acme\.test" is not one of this tenant's sender domains/);
  const fromEu = await h.send(KEYS.acme, { from: 'x@eu.acme.test', to: 'eve@example.org', subject: 's', text: 't', envelope: { from: '', to: ['eve@example.org'] } });
  assert.equal(fromEu.ok === false && fromEu.code, 550);
  const envelope = await h.send(KEYS.acme, { from: 'x@acme.test', to: 'eve@example.org', subject: 's', text: 't', envelope: { from: 'bounce@elsewhere.test', to: ['eve@example.org'] } });
  assert.equal(envelope.ok === false && envelope.code, 553);
  assert.equal(h.sink.messagesTo('eve@example.org').length, 0);
  assert.ok((await h.counter('postline_smtp_gateway_refused_total', { reason: 'sender-domain' })) >= 3);
});

test('protocol edges on a raw socket: STARTTLS before AUTH, AUTH before MAIL, bad keys, SIZE, a message over the limit drained, bad content refused', async () => {
  const { client, greeting } = await SmtpClient.connect(h.gateway.submissionPort);
  try {
    assert.equal(greeting.code, 220);
    const ehlo = await client.cmd('EHLO client.test');
    assert.match(ehlo.text, /STARTTLS/);
    assert.equal((await client.authPlain(KEYS.acme)).code, 538, 'AUTH before STARTTLS');
    assert.equal((await client.cmd('MAIL FROM:<a@acme.test>')).code, 530, 'MAIL before AUTH');
    assert.equal((await client.starttls()).code, 220);
    const secured = await client.cmd('EHLO client.test');
    assert.match(secured.text, /AUTH PLAIN LOGIN/);
    assert.match(secured.text, /SIZE 262144/);
    assert.equal((await client.cmd('MAIL FROM:<a@acme.test>')).code, 530, 'still no MAIL before AUTH');
    assert.equal((await client.authPlain('pl_not_a_key')).code, 535);
    assert.equal((await client.authPlain(READ_ONLY_KEY)).code, 535, 'a key without the send scope');
    assert.equal((await client.authPlain(KEYS.acme)).code, 235);
    assert.equal((await client.cmd(`MAIL FROM:<a@acme.test> SIZE=${256 * 1024 + 1}`)).code, 552, 'a declared SIZE over the limit');
    assert.equal((await client.cmd('MAIL FROM:<a@acme.test>')).code, 250);
    assert.equal((await client.cmd('RCPT TO:<not an address>')).code, 501);
    assert.equal((await client.cmd('RCPT TO:<fay@example.org>')).code, 250);
    const big = `From: a@acme.test\r\nTo: fay@example.org\r\nSubject: big\r\n\r\n${'x'.repeat(76).concat('\r\n').repeat(4000)}`;
    const tooLarge = await client.data(big);
    assert.equal(tooLarge.code, 552, tooLarge.text);
    // The connection is still usable: the over-size message was read to its end, not held.
    const cases: Array<[string, string | Buffer, number, RegExp]> = [
      ['no From', 'To: fay@example.org\r\nSubject: x\r\n\r\nbody\r\n', 554, /no From header/],
      ['bad priority', 'From: a@acme.test\r\nX-Postline-Priority: urgent\r\nSubject: x\r\n\r\nbody\r\n', 554, /X-Postline-Priority/],
      ['8-bit latin-1', Buffer.concat([Buffer.from('From: a@acme.test\r\nSubject: x\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGr'), Buffer.from([0xfc, 0xdf]), Buffer.from('e\r\n')]), 554, /not UTF-8/],
      ['accepted', 'From: a@acme.test\r\nSubject: fine\r\n\r\nbody\r\n', 250, /queued as/],
    ];
    for (const [name, message, code, text] of cases) {
      assert.equal((await client.cmd('MAIL FROM:<a@acme.test>')).code, 250, name);
      assert.equal((await client.cmd('RCPT TO:<fay@example.org>')).code, 250, name);
      const reply = await client.data(message);
      assert.equal(reply.code, code, `${name}: ${reply.text}`);
      assert.match(reply.text, text, name);
    }
    await waitFor(() => h.sink.messagesTo('fay@example.org').length === 1, 60_000, 'only the accepted message delivered');
  } finally {
    client.close();
  }
});

test('a raw request produced straight to Kafka takes the raw path; a foreign From domain is dead-lettered SENDER_DOMAIN', async () => {
  const kafka = new Kafka({ brokers: [h.broker.bootstrap], clientId: 'gateway-e2e', logLevel: logLevel.NOTHING });
  const producer = kafka.producer();
  await producer.connect();
  try {
    const base = { schemaVersion: 1 as const, tenant: 'acme', acceptedAt: new Date().toISOString(), priority: 'transactional' as const };
    const ok: RawEmailRequested = { ...base, messageId: 'foreign-ok-1', raw: Buffer.from('From: app@acme.test\r\nSubject: foreign\r\nBcc: hidden@example.org\r\n\r\nhi\r\n').toString('base64'), envelope: { from: '', to: ['gus@example.org'] } };
    const bad: RawEmailRequested = { ...base, messageId: 'foreign-bad-1', raw: Buffer.from('From: ceo@globex.test\r\nSubject: spoof\r\n\r\nhi\r\n').toString('base64'), envelope: { from: '', to: ['hal@example.org'] } };
    await producer.send({ topic: Topics.requested, acks: -1, messages: [ok, bad].map((r) => ({ key: r.messageId, value: RawEmailRequestedContract.encode(r) })) });
    const [msg] = await waitFor(() => (h.sink.messagesTo('gus@example.org').length ? h.sink.messagesTo('gus@example.org') : undefined), 60_000, 'the foreign raw message delivered');
    assert.equal(header(msg.raw, 'Bcc'), undefined);
    assert.equal(header(msg.raw, 'Message-ID'), '<foreign-ok-1@acme.test>');
    const dead = await waitFor(() => h.deadLetters().find((d) => d.messageId === 'foreign-bad-1'), 30_000, 'the spoofed record dead-lettered');
    assert.equal(dead.code, 'SENDER_DOMAIN');
    assert.equal(h.sink.messagesTo('hal@example.org').length, 0);
  } finally {
    await producer.disconnect();
  }
});

test('X-Postline-Idempotency-Key: a retried message gets the first id and is not sent again; the key with other recipients is refused', async () => {
  const mail = { from: 'orders@acme.test', to: 'ivy@example.org', subject: 'Order 42', text: 'Thanks.', headers: { 'X-Postline-Idempotency-Key': 'order-42' } };
  const first = await h.send(KEYS.acme, mail);
  assert.ok(first.ok, first.response);
  // A client's retry: nodemailer builds the message again (new Date, Message-ID, boundaries).
  const again = await h.send(KEYS.acme, mail);
  assert.ok(again.ok, again.response);
  assert.equal(again.messageId, first.messageId);
  assert.match(again.response, /already queued/);
  const other = await h.send(KEYS.acme, { ...mail, to: 'jay@example.org' });
  assert.equal(other.ok === false && other.code, 554);
  // The same key of another tenant is its own.
  const eu = await h.send(KEYS['acme/eu'], { ...mail, from: 'orders@eu.acme.test' });
  assert.ok(eu.ok && eu.messageId !== first.messageId);
  await waitFor(() => h.sink.messagesTo('ivy@example.org').length >= 2, 60_000, 'the acme and acme/eu messages delivered');
  await h.waitForEvent('sent', first.messageId);
  assert.equal(h.events('accepted', first.messageId).length, 1, 'accepted once');
  assert.equal(h.sink.messagesTo('ivy@example.org').filter((m) => header(m.raw, 'X-Postline-Ref') && keyring.verify(header(m.raw, 'X-Postline-Ref')!, 'ref')?.messageId === first.messageId).length, 1, 'delivered once');
  assert.equal(h.sink.messagesTo('jay@example.org').length, 0);
  assert.equal(await h.counter('postline_smtp_gateway_replayed_total'), 1);
});
