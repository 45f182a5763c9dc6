/**
 * Feedback copies in the render stage, against an in-memory producer: with a feedback key every
 * recipient gets its own dispatch record whose copy carries its own X-Postline-Ref,
 * List-Unsubscribe (+ -Post) and signed return path, DKIM-signed per copy (verified by
 * mailauth); rendering again gives identical bytes; without a key nothing changes; what would
 * inject a header is refused.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import pino from 'pino';
import { simpleParser } from 'mailparser';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { Renderer } from './renderer.js';
import { feedbackConfigProblems, feedbackPolicy, unsubscribeApplies, type UnsubscribeDefaults } from './feedback-copies.js';
import { EventPublisher } from '../../shared/events.js';
import { TemplateRepository } from '../../shared/templates/template-repository.js';
import type { StageRecord } from '../../shared/kafka/stage-consumer.js';
import type { BatchingProducer } from '../../shared/kafka/batching-producer.js';
import { DeadLetterContract } from '../../shared/contracts/dead-letter.js';
import { EmailEventContract } from '../../shared/contracts/email-event.js';
import { EmailReadyForDispatchContract, type EmailReadyForDispatch } from '../../shared/contracts/email-ready-for-dispatch.js';
import { FeedbackKeyring, recipientHash, tokenOfLocalPart } from '../../shared/feedback/feedback-token.js';
import { keyFor, type DkimKey } from '../../shared/dkim/dkim-keys.js';
import { dkimRecordValue } from '../../shared/dkim/dkim-record.js';
import { emailRequest } from '../../test/renderer/email-requests.js';
import type { EmailRequested } from '../../shared/contracts/email-requested.js';

class RecordingProducer {
  sent: Array<{ topic: string; key: string; value: Buffer }> = [];
  async send(topic: string, message: { key?: string | null; value: Buffer | string | null }) {
    this.sent.push({ topic, key: String(message.key), value: Buffer.from(message.value ?? '') });
    return { topic, partition: 0, offset: '0' };
  }
  on(topic: string) {
    return this.sent.filter((s) => s.topic === topic);
  }
}

const keyring = new FeedbackKeyring([{ id: 1, secret: 'feedback-secret-for-renderer-tests-0123456789' }]);
const defaults: UnsubscribeDefaults = { priorities: ['bulk'], tenants: { globex: [] } };
const config = { returnPathDomain: 'bounces.shop.example', unsubscribeUrl: 'https://mail.shop.example/' };

const dkimKey: DkimKey = (() => {
  const { privateKey } = generateKeyPairSync('ed25519');
  return { domain: 'shop.example', selector: 's2026', type: 'ed25519', privateKey, file: '/keys/shop.example/s2026.pem', digest: '' };
})();

function setup(opts: { feedback?: boolean; dkim?: boolean; feedbackConfig?: typeof config; espProviders?: string[] } = {}) {
  const producer = new RecordingProducer();
  const renderer = new Renderer({
    templates: new TemplateRepository({}),
    producer,
    events: new EventPublisher(producer as unknown as BatchingProducer, 'renderer'),
    logger: pino({ level: 'silent' }),
    limits: { maxRecordBytes: 64 * 1024, maxMessageBytes: 1024 * 1024 },
    ...(opts.dkim ? { dkim: { keys: { keyFor: (d: string) => keyFor({ domains: new Map([['shop.example', { domain: 'shop.example', keys: [dkimKey], active: dkimKey, activeBy: 'last-selector' as const }]]) }, d) }, missingKey: 'unsigned' as const } } : {}),
    ...(opts.feedback === false ? {} : { feedback: feedbackPolicy(keyring, opts.feedbackConfig ?? config, defaults, opts.espProviders) }),
  });
  const failed: string[] = [];
  renderer.on('failed', (c: string) => failed.push(c));
  return { producer, renderer, failed };
}

let offset = 0;
const record = (value: unknown): StageRecord => ({
  topic: 'email.requested',
  partition: 0,
  message: { key: Buffer.from('k'), value: Buffer.from(JSON.stringify(value)), offset: String(offset++), timestamp: '0', attributes: 0, size: 0 } as never,
});

const dispatched = (p: RecordingProducer, priority = 'bulk'): EmailReadyForDispatch[] => p.on(`email.dispatch.${priority}`).map((s) => EmailReadyForDispatchContract.decode(s.value));

function bulk(overrides: Partial<EmailRequested> = {}): EmailRequested {
  return emailRequest({
    priority: 'bulk',
    listId: 'weekly-news',
    to: [{ email: 'Jane@Gmail.com', name: 'Jane' }, { email: 'bob@gmail.com' }],
    cc: [{ email: 'carol@example.org' }],
    bcc: [{ email: 'dave@example.org' }],
    ...overrides,
  });
}

/** The header block of a raw message, unfolded. */
const headBlock = (raw: string) => raw.split('\r\n\r\n')[0].replace(/\r\n[ \t]+/g, ' ');
const headerValue = (raw: string, name: string) => headBlock(raw).split('\r\n').find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`))?.slice(name.length + 1).trim();

async function dkimResults(raw: string) {
  const resolver = async (name: string, rr: string): Promise<string[][]> => {
    if (rr === 'TXT' && name === `${dkimKey.selector}._domainkey.${dkimKey.domain}`) return [[dkimRecordValue(dkimKey.privateKey, dkimKey.type)]];
    throw Object.assign(new Error(`no ${rr} for ${name}`), { code: 'ENOTFOUND' });
  };
  return (await dkimVerify(Buffer.from(raw), { resolver })).results;
}

describe('renderer: feedback copies', () => {
  test('with SendGrid named as an ESP, each copy carries its ref as a SendGrid unique arg too', async () => {
    const plain = setup();
    const esp = setup({ espProviders: ['sendgrid'] });
    await plain.renderer.handle(record(bulk()));
    await esp.renderer.handle(record(bulk()));
    assert.equal(headerValue(dispatched(plain.producer)[0].raw, 'X-SMTPAPI'), undefined);
    for (const r of dispatched(esp.producer)) {
      const args = JSON.parse(headerValue(r.raw, 'X-SMTPAPI')!) as { unique_args: { postline_ref: string } };
      assert.equal(args.unique_args.postline_ref, headerValue(r.raw, 'X-Postline-Ref'));
      assert.equal(keyring.verify(args.unique_args.postline_ref, 'ref')?.recipient, r.envelope.to[0].toLowerCase());
    }
  });

  test('one record per recipient, keyed by its domain, each copy with its own signed ref, List-Unsubscribe and return path', async () => {
    const { producer, renderer } = setup();
    const req = bulk();
    await renderer.handle(record(req));
    const records = dispatched(producer);
    assert.deepEqual(records.map((r) => r.envelope.to), [['Jane@gmail.com'], ['bob@gmail.com'], ['carol@example.org'], ['dave@example.org']]);
    assert.deepEqual(producer.on('email.dispatch.bulk').map((s) => s.key), ['gmail.com', 'gmail.com', 'example.org', 'example.org']);
    for (const r of records) {
      const recipient = r.envelope.to[0];
      assert.equal(r.fromDomain, 'shop.example');
      assert.equal(r.listId, 'weekly-news');
      // The return path: b-<token>@bounces domain, a return-path token naming this recipient by hash.
      const [local, domain] = r.envelope.from.split('@');
      assert.equal(domain, 'bounces.shop.example');
      const rp = keyring.verify(tokenOfLocalPart(local, 'b-')!, 'return-path');
      assert.deepEqual([rp?.messageId, rp?.tenant, rp?.recipientHash], [req.messageId, 'acme', recipientHash(recipient)]);
      // X-Postline-Ref: a ref token with the full recipient, from domain and list.
      const ref = keyring.verify(headerValue(r.raw, 'X-Postline-Ref')!, 'ref');
      assert.deepEqual(ref && { ...ref, recipientHash: undefined }, {
        purpose: 'ref', messageId: req.messageId, tenant: 'acme', recipient: recipient.toLowerCase(), recipientHash: undefined, fromDomain: 'shop.example', listId: 'weekly-news',
      });
      // List-Unsubscribe: the URL and the mailto carry the same unsubscribe token.
      const lu = headerValue(r.raw, 'List-Unsubscribe')!;
      const m = /^<https:\/\/mail\.shop\.example\/u\/([a-z2-7]+)>, <mailto:u-([a-z2-7]+)@bounces\.shop\.example>$/.exec(lu);
      assert.ok(m, lu);
      assert.equal(m[1], m[2]);
      assert.equal(keyring.verify(m[1], 'unsubscribe')?.recipient, recipient.toLowerCase());
      assert.equal(keyring.verify(m[1], 'ref'), undefined, 'an unsubscribe token is not a ref');
      assert.equal(headerValue(r.raw, 'List-Unsubscribe-Post'), 'List-Unsubscribe=One-Click');
      // Still one well-formed message: visible recipients as composed, no Bcc header.
      const parsed = await simpleParser(r.raw);
      assert.equal(parsed.subject, 'Your order');
      assert.equal(parsed.text?.trim(), 'Thanks for your order.');
      assert.equal(parsed.headers.get('bcc'), undefined);
      for (const line of r.raw.split('\r\n')) assert.ok(line.length <= 998);
    }
    const tokens = new Set(records.map((r) => headerValue(r.raw, 'X-Postline-Ref')));
    assert.equal(tokens.size, 4);
    const [rendered] = producer.on('email.events').map((s) => EmailEventContract.decode(s.value));
    assert.equal(rendered.type, 'rendered');
    assert.equal(rendered.domainCount, 4, 'domainCount counts dispatch records');
    assert.deepEqual(rendered.recipients, ['Jane@gmail.com', 'bob@gmail.com', 'carol@example.org', 'dave@example.org']);
  });

  test('every copy carries a DKIM signature over its own List-Unsubscribe pair that mailauth verifies; a redelivery renders identical bytes', async () => {
    const { producer, renderer } = setup({ dkim: true });
    const req = bulk();
    await renderer.handle(record(req));
    const first = dispatched(producer);
    for (const r of first) {
      const results = await dkimResults(r.raw);
      assert.equal(results[0]?.status.result, 'pass', JSON.stringify(results));
      assert.match(headBlock(r.raw), /h=[^;]*List-Unsubscribe:[^;]*List-Unsubscribe-Post/i);
      // The signature covers the copy's own headers: swapping in another copy's List-Unsubscribe breaks it.
      const other = first.find((o) => o !== r)!;
      const forged = r.raw.replace(/List-Unsubscribe: [^]*?\r\n(?! )/, () => /List-Unsubscribe: [^]*?\r\n(?! )/.exec(other.raw)![0]);
      assert.notEqual(forged, r.raw);
      assert.notEqual((await dkimResults(forged))[0]?.status.result, 'pass');
    }
    await renderer.handle(record(req));
    const again = dispatched(producer).slice(first.length);
    assert.deepEqual(
      again.map((r) => [r.envelope.from, r.raw]),
      first.map((r) => [r.envelope.from, r.raw]),
    );
  });

  test('unsubscribe: bulk by default, transactional not, per message and per tenant overrides', async () => {
    const { producer, renderer } = setup();
    const cases: Array<[Partial<EmailRequested>, boolean]> = [
      [{ priority: 'bulk' }, true],
      [{ priority: 'transactional' }, false],
      [{ priority: 'transactional', unsubscribe: true }, true],
      [{ priority: 'bulk', unsubscribe: false }, false],
      [{ priority: 'bulk', tenant: 'globex' }, false],
      // A List-Unsubscribe of the request's own: it manages unsubscribes, Postline adds none.
      [{ priority: 'bulk', headers: { 'List-Unsubscribe': '<https://own.example/x>' } }, false],
    ];
    for (const [overrides, expected] of cases) {
      const req = emailRequest({ to: [{ email: 'x@example.org' }], ...overrides });
      await renderer.handle(record(req));
      const [r] = dispatched(producer, req.priority).filter((d) => d.messageId === req.messageId);
      const lu = headerValue(r.raw, 'List-Unsubscribe');
      assert.equal(lu !== undefined && lu.includes('/u/'), expected, JSON.stringify(overrides));
      assert.equal(headerValue(r.raw, 'List-Unsubscribe-Post') !== undefined, expected);
      assert.ok(headerValue(r.raw, 'X-Postline-Ref'), 'X-Postline-Ref is always there');
    }
    assert.equal(unsubscribeApplies({ tenant: 'acme', priority: 'critical' }, defaults), false);
  });

  test('only the configured parts: no URL → mailto only and no List-Unsubscribe-Post; no return-path domain → From as envelope sender, URL only', async () => {
    const mailtoOnly = setup({ feedbackConfig: { returnPathDomain: 'bounces.shop.example', unsubscribeUrl: '' } });
    await mailtoOnly.renderer.handle(record(bulk({ to: [{ email: 'x@example.org' }], cc: undefined, bcc: undefined })));
    const [a] = dispatched(mailtoOnly.producer);
    assert.match(headerValue(a.raw, 'List-Unsubscribe')!, /^<mailto:u-[a-z2-7]+@bounces\.shop\.example>$/);
    assert.equal(headerValue(a.raw, 'List-Unsubscribe-Post'), undefined);
    const urlOnly = setup({ feedbackConfig: { returnPathDomain: '', unsubscribeUrl: 'https://mail.shop.example' } });
    await urlOnly.renderer.handle(record(bulk({ to: [{ email: 'x@example.org' }], cc: undefined, bcc: undefined })));
    const [b] = dispatched(urlOnly.producer);
    assert.equal(b.envelope.from, 'noreply@shop.example');
    assert.match(headerValue(b.raw, 'List-Unsubscribe')!, /^<https:\/\/mail\.shop\.example\/u\/[a-z2-7]+>$/);
    assert.equal(headerValue(b.raw, 'List-Unsubscribe-Post'), 'List-Unsubscribe=One-Click');
  });

  test('without a feedback key: one record per domain with the same raw as before, no feedback headers', async () => {
    const off = setup({ feedback: false, dkim: true });
    const on = setup({ dkim: true, feedbackConfig: config });
    const req = bulk();
    await off.renderer.handle(record(req));
    const records = dispatched(off.producer);
    assert.deepEqual(records.map((r) => [r.domain, r.envelope.from, r.envelope.to]), [
      ['gmail.com', 'noreply@shop.example', ['Jane@gmail.com', 'bob@gmail.com']],
      ['example.org', 'noreply@shop.example', ['carol@example.org', 'dave@example.org']],
    ]);
    assert.equal(records[0].raw, records[1].raw);
    assert.doesNotMatch(records[0].raw, /X-Postline-Ref|List-Unsubscribe/i);
    // The feedback copy is exactly the composed message with its own header lines in front, then signed.
    await on.renderer.handle(record(req));
    const copy = dispatched(on.producer)[0].raw;
    const strip = (raw: string) => raw.replace(/^(?:(?:DKIM-Signature|X-Postline-Ref|List-Unsubscribe|List-Unsubscribe-Post):[^]*?\r\n(?![ \t]))+/, '');
    assert.equal(strip(copy), strip(records[0].raw));
  });

  test('header injection is refused: a list id with a line break or an X-Postline-Ref of the request is dead-lettered; bad feedback config is named', async () => {
    const { producer, renderer, failed } = setup();
    await renderer.handle(record(bulk({ listId: 'news\r\nBcc: victim@example.org' })));
    await renderer.handle(record(bulk({ listId: 'news\u0007' })));
    await renderer.handle(record(bulk({ headers: { 'X-Postline-Ref': 'forged' } })));
    await renderer.handle(record(bulk({ unsubscribe: true, headers: { 'List-Unsubscribe': '<https://own.example/x>' } })));
    assert.equal(dispatched(producer).length, 0);
    assert.deepEqual(failed, ['VALIDATION_FAILED', 'VALIDATION_FAILED', 'VALIDATION_FAILED', 'VALIDATION_FAILED']);
    const reasons = producer.on('email.dead').map((s) => DeadLetterContract.decode(s.value).reason);
    assert.match(reasons[0], /listId/);
    assert.match(reasons[2], /X-Postline-Ref.*reserved/);
    assert.match(reasons[3], /unsubscribe/);
    assert.deepEqual(feedbackConfigProblems({ returnPathDomain: 'bounces.example.com', unsubscribeUrl: 'https://mail.example.com/mail' }), []);
    const problems = feedbackConfigProblems({ returnPathDomain: 'bounces.example.com>\r\nBcc: x', unsubscribeUrl: 'https://mail.example.com/>,<x' });
    assert.equal(problems.length, 2);
    assert.match(problems[0], /POSTLINE_FEEDBACK_RETURN_PATH_DOMAIN/);
    assert.match(problems[1], /POSTLINE_FEEDBACK_UNSUBSCRIBE_URL/);
    assert.equal(feedbackConfigProblems({ returnPathDomain: '', unsubscribeUrl: 'ftp://x.example' }).length, 1);
    assert.equal(feedbackConfigProblems({ returnPathDomain: '', unsubscribeUrl: 'https://x.example/?a=1' }).length, 1);
  });

  test('a field too long for a token, or a line too long for a header, leaves that part out instead of failing the message', async () => {
    const { producer, renderer } = setup();
    // 64 + 1 + 252 bytes: over the 255 a token carries, so neither ref nor unsubscribe token can be made.
    const huge = `${'a'.repeat(64)}@${Array.from({ length: 4 }, () => 'd'.repeat(60)).join('.')}.example`;
    await renderer.handle(record(bulk({ to: [{ email: huge }], cc: undefined, bcc: undefined })));
    const [r] = dispatched(producer);
    assert.ok(r, 'the message is still dispatched');
    assert.equal(headerValue(r.raw, 'X-Postline-Ref'), undefined);
    assert.equal(headerValue(r.raw, 'List-Unsubscribe'), undefined);
    assert.match(r.envelope.from, /^b-[a-z2-7]+@bounces\.shop\.example$/, 'a return path carries only a hash of the recipient');
    // A long URL base with long fields: the URL would pass 998 characters, the mailto still fits.
    const longUrl = setup({ feedbackConfig: { returnPathDomain: 'bounces.shop.example', unsubscribeUrl: `https://mail.shop.example/${'p'.repeat(300)}` } });
    await longUrl.renderer.handle(record(bulk({ tenant: 't'.repeat(128), listId: 'l'.repeat(128), to: [{ email: `${'a'.repeat(64)}@${'d'.repeat(60)}.${'e'.repeat(60)}.example` }], cc: undefined, bcc: undefined })));
    const [l] = dispatched(longUrl.producer);
    assert.match(headerValue(l.raw, 'List-Unsubscribe')!, /^<mailto:u-[a-z2-7]+@bounces\.shop\.example>$/);
    assert.equal(headerValue(l.raw, 'List-Unsubscribe-Post'), undefined);
    for (const line of [...r.raw.split('\r\n'), ...l.raw.split('\r\n')]) assert.ok(line.length <= 998, `${line.length}`);
  });
});
