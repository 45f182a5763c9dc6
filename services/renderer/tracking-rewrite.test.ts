/**
 * Tracking in the render stage: the HTML rewrite on its own (htmlparser2 positions, what is left
 * alone), and the Renderer with feedback + tracking against an in-memory producer: every
 * recipient's copy has its own signed links and pixel, the text part is untouched, rendering
 * again gives the same bytes, and the request's `track` / tenant defaults decide.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { simpleParser } from 'mailparser';
import { Renderer } from './renderer.js';
import { feedbackPolicy } from './feedback-copies.js';
import { issuedAtOf, rewriteHtml, trackingConfigProblems, trackingFor, trackingPolicy, type TrackingPolicy } from './tracking-rewrite.js';
import { EventPublisher } from '../../shared/events.js';
import { TemplateRepository } from '../../shared/templates/template-repository.js';
import type { StageRecord } from '../../shared/kafka/stage-consumer.js';
import type { BatchingProducer } from '../../shared/kafka/batching-producer.js';
import { EmailReadyForDispatchContract } from '../../shared/contracts/email-ready-for-dispatch.js';
import { FeedbackKeyring } from '../../shared/feedback/feedback-token.js';
import { verifyClick, verifyOpen } from '../../shared/tracking/tracking-links.js';
import { emailRequest } from '../../test/renderer/email-requests.js';
import type { EmailRequested } from '../../shared/contracts/email-requested.js';

const keyring = new FeedbackKeyring([{ id: 1, secret: 'tracking-secret-for-renderer-tests-0123456789' }]);
const tracking = { baseUrl: 'https://t.shop.example/', domains: { 'acme/eu': 'https://click.acme.eu' }, opens: false, clicks: false, tenants: { acme: { opens: true, clicks: true } } };
const policy = trackingPolicy(keyring, tracking, 'https://mail.shop.example')!;

describe('rewriteHtml', () => {
  const link = (i: number, url: string) => `https://t/c/${i}?u=${encodeURIComponent(url)}`;

  test('http(s) links are replaced in place; everything else stays byte for byte', () => {
    const html = `<html><body><p>Hi</p><A class=x HREF="https://a.example/?q=1&amp;r=2" data-x>A</A> <a href='http://b.example'>B</a> <a href=https://c.example/d>C</a></body></html>`;
    assert.equal(
      rewriteHtml(html, { link }),
      `<html><body><p>Hi</p><A class=x href="https://t/c/0?u=https%3A%2F%2Fa.example%2F%3Fq%3D1%26r%3D2" data-x>A</A> <a href="https://t/c/1?u=http%3A%2F%2Fb.example">B</a> <a href="https://t/c/2?u=https%3A%2F%2Fc.example%2Fd">C</a></body></html>`,
    );
  });

  test('mailto:, tel:, #anchors, relative links, data-postline-notrack and links inside comments are left alone', () => {
    const html = `<a href="mailto:x@y.z">m</a><a href="tel:+1">t</a><a href="#top">#</a><a href="/rel">r</a><a data-postline-notrack href="https://n.example">n</a><!-- <a href="https://c.example">c</a> --><a href="https://y.example">y</a>`;
    const out = rewriteHtml(html, { link });
    assert.equal(out, html.replace('href="https://y.example"', `href="https://t/c/0?u=https%3A%2F%2Fy.example"`));
  });

  test('a replaced URL with & and " is escaped in the attribute', () => {
    assert.equal(rewriteHtml('<a href="https://a">a</a>', { link: () => 'https://t/c?a=1&b="2"' }), '<a href="https://t/c?a=1&amp;b=&quot;2&quot;">a</a>');
  });

  test('the pixel goes before </body>, or at the end without one', () => {
    assert.equal(rewriteHtml('<html><body><p>x</p></body></html>', { pixel: 'https://t/o/tok.gif' }).replace(/<img[^>]*>/, 'IMG'), '<html><body><p>x</p>IMG</body></html>');
    assert.equal(rewriteHtml('<p>x</p>', { pixel: 'https://t/o/tok.gif' }), '<p>x</p><img src="https://t/o/tok.gif" width="1" height="1" alt="" style="display:block;width:1px;height:1px;border:0" />');
  });
});

describe('which messages are tracked', () => {
  const req = (over: Partial<EmailRequested>) => emailRequest(over);
  test('request, else tenant, else global default; per-tenant domain', () => {
    assert.deepEqual(trackingFor(req({ tenant: 'acme' }), policy), { opens: true, clicks: true, base: 'https://t.shop.example' });
    assert.deepEqual(trackingFor(req({ tenant: 'acme', track: { opens: false } }), policy), { opens: false, clicks: true, base: 'https://t.shop.example' });
    assert.equal(trackingFor(req({ tenant: 'acme', track: { opens: false, clicks: false } }), policy), undefined);
    assert.equal(trackingFor(req({ tenant: 'globex' }), policy), undefined, 'global default off');
    assert.deepEqual(trackingFor(req({ tenant: 'acme/eu', track: { clicks: true } }), policy), { opens: false, clicks: true, base: 'https://click.acme.eu' });
  });
  test('issuedAt is the acceptance, or sendAt when later', () => {
    assert.equal(issuedAtOf({ acceptedAt: '2026-03-01T12:00:00.000Z' }), Date.parse('2026-03-01T12:00:00Z') / 1000);
    assert.equal(issuedAtOf({ acceptedAt: '2026-03-01T12:00:00.000Z', sendAt: '2026-03-05T08:00:00Z' }), Date.parse('2026-03-05T08:00:00Z') / 1000);
  });
  test('bad base URLs are config problems naming their variable; no key or no base: no policy', () => {
    assert.deepEqual(trackingConfigProblems({ baseUrl: 'ftp://x', domains: { acme: 'https://ok.example', globex: 'https://x/?q' } }).map((p) => p.split(' ')[0]), ['POSTLINE_TRACKING_BASE_URL', 'POSTLINE_TRACKING_DOMAINS']);
    assert.equal(trackingPolicy(new FeedbackKeyring([]), tracking, ''), undefined);
    assert.equal(trackingPolicy(keyring, { ...tracking, baseUrl: '', domains: {} }, ''), undefined);
  });
});

class RecordingProducer {
  sent: Array<{ topic: string; value: Buffer }> = [];
  async send(topic: string, message: { value: Buffer | string | null }) {
    this.sent.push({ topic, value: Buffer.from(message.value ?? '') });
    return { topic, partition: 0, offset: '0' };
  }
}

function setup(tp: TrackingPolicy | null = policy) {
  const producer = new RecordingProducer();
  const renderer = new Renderer({
    templates: new TemplateRepository({}),
    producer,
    events: new EventPublisher(producer as unknown as BatchingProducer, 'renderer'),
    logger: pino({ level: 'silent' }),
    limits: { maxRecordBytes: 256 * 1024, maxMessageBytes: 1024 * 1024 },
    feedback: feedbackPolicy(keyring, { returnPathDomain: 'bounces.shop.example', unsubscribeUrl: 'https://mail.shop.example' }, { priorities: ['bulk'], tenants: {} }),
    ...(tp ? { tracking: tp } : {}),
  });
  return { producer, renderer };
}

let offset = 0;
const record = (value: unknown): StageRecord => ({
  topic: 'email.requested',
  partition: 0,
  message: { key: Buffer.from('k'), value: Buffer.from(JSON.stringify(value)), offset: String(offset++), timestamp: '0', attributes: 0, size: 0 } as never,
});
const copies = (p: RecordingProducer) => p.sent.filter((s) => s.topic.startsWith('email.dispatch.')).map((s) => EmailReadyForDispatchContract.decode(s.value));
const hrefs = (html: string) => [...html.matchAll(/href="([^"]+)"/g)].map((m) => m[1].replaceAll('&amp;', '&'));

const HTML = '<html><body><p>Hi</p><a href="https://shop.example/o/1?a=1&amp;b=2">Order</a> <a href="mailto:help@shop.example">help</a> <a href="https://mail.shop.example/u/abc">unsubscribe</a></body></html>';
const TEXT = 'Order: https://shop.example/o/1';

describe('renderer: tracked copies', () => {
  test('each recipient copy carries its own signed click links and pixel; the text part is as written', async () => {
    const { producer, renderer } = setup();
    const req = emailRequest({ to: [{ email: 'jane@example.org' }, { email: 'bob@example.net' }], html: HTML, text: TEXT });
    await renderer.handle(record(req));
    const out = copies(producer);
    assert.equal(out.length, 2);
    for (const c of out) {
      const recipient = c.envelope.to[0];
      const parsed = await simpleParser(c.raw);
      const html = String(parsed.html);
      assert.equal(parsed.text?.trim(), TEXT);
      const links = hrefs(html);
      const click = new URL(links[0]);
      assert.equal(click.origin, 'https://t.shop.example');
      const hit = verifyClick(keyring, click.pathname.split('/')[2], click.searchParams.get('u')!);
      assert.deepEqual(hit && { ...hit }, { messageId: req.messageId, tenant: 'acme', recipient, kind: 'click', linkIndex: 0, issuedAt: issuedAtOf(req), url: 'https://shop.example/o/1?a=1&b=2' });
      assert.equal(links[1], 'mailto:help@shop.example');
      assert.equal(links[2], 'https://mail.shop.example/u/abc', 'the unsubscribe link is never rewritten');
      const pixel = /<img src="https:\/\/t\.shop\.example\/o\/([a-z2-7]+)\.gif"/.exec(html);
      assert.equal(verifyOpen(keyring, pixel![1])?.recipient, recipient);
    }
    // Rendering again yields identical copies.
    const again = setup();
    await again.renderer.handle(record(req));
    assert.deepEqual(copies(again.producer).map((c) => c.raw), out.map((c) => c.raw));
  });

  test('track:false, a tenant without tracking, or no tracking policy: the HTML is as written', async () => {
    for (const [tp, over] of [
      [policy, { track: { opens: false, clicks: false } }],
      [policy, { tenant: 'globex' }],
      [null, {}],
    ] as const) {
      const { producer, renderer } = setup(tp);
      await renderer.handle(record(emailRequest({ html: HTML, ...over })));
      const html = String((await simpleParser(copies(producer)[0].raw)).html);
      assert.deepEqual(hrefs(html), ['https://shop.example/o/1?a=1&b=2', 'mailto:help@shop.example', 'https://mail.shop.example/u/abc']);
      assert.doesNotMatch(html, /\/o\/[a-z2-7]+\.gif/);
    }
  });
});
