/**
 * The tracker's HTTP behaviour through `inject`: the pixel and the redirect for signed links,
 * 404 (a plain page, no Location) for anything else, and the events they queue.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { FeedbackKeyring } from '../../shared/feedback/feedback-token.js';
import type { EventInput } from '../../shared/events.js';
import { parseCidrs } from '../../shared/tracking/client-ip.js';
import { clickUrl, pixelUrl } from '../../shared/tracking/tracking-links.js';
import { isBotUserAgent } from '../../shared/tracking/machine-detection.js';
import { buildTrackerApp, PIXEL_GIF } from './app.js';
import { EngagementMemory } from './engagement-memory.js';

const keyring = new FeedbackKeyring([{ id: 4, secret: 'tracker-app-test-secret-0123456789abcdef' }]);
const BASE = 'http://t.test';
const ISSUED = 1_780_000_000;
const CHROME = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
const DEST = 'https://shop.example/orders/42?utm=mail&é=1';
const copy = (tenant = 'acme', recipient = 'jane@example.org') => ({ messageId: 'msg-1', tenant, recipient, issuedAt: ISSUED });

function setup(nowMs = ISSUED * 1000 + 3_600_000, extra: { isBot?: (ua: string) => boolean; logger?: pino.Logger } = {}) {
  const events: EventInput[] = [];
  const app = buildTrackerApp({
    keyring,
    buffer: { push: (e) => (events.push(e), true) },
    memory: new EngagementMemory(1000),
    rules: { appleProxyRanges: parseCidrs(['17.0.0.0/8']), withinSeconds: 2, clickBurstMs: 1000, ...(extra.isBot ? { isBot: extra.isBot } : {}) },
    logger: extra.logger ?? pino({ level: 'silent' }),
    now: () => nowMs,
  });
  return { app, events };
}
const path = (url: string) => url.slice(BASE.length);

describe('tracker app', () => {
  test('the pixel: 43-byte GIF, not cacheable; an opened event with first, truncated ip and user agent', async () => {
    const { app, events } = setup();
    const res = await app.inject({ url: path(pixelUrl(keyring, BASE, copy())), headers: { 'user-agent': CHROME }, remoteAddress: '203.0.113.77' });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'image/gif');
    assert.match(String(res.headers['cache-control']), /no-store/);
    assert.equal(res.rawPayload.length, 43);
    assert.deepEqual(res.rawPayload, PIXEL_GIF);
    assert.deepEqual(events, [
      { type: 'opened', messageId: 'msg-1', tenant: 'acme', recipients: ['jane@example.org'], at: new Date(ISSUED * 1000 + 3_600_000).toISOString(), engagement: { first: true, machine: false, ip: '203.0.113.0', userAgent: CHROME } },
    ]);
    await app.inject({ url: path(pixelUrl(keyring, BASE, copy())), headers: { 'user-agent': CHROME } });
    assert.equal(events[1].engagement?.first, false, 'a second open of the same copy is not first');
    // acme/eu reusing acme's message id and recipient: its own first open.
    await app.inject({ url: path(pixelUrl(keyring, BASE, copy('acme/eu'))), headers: { 'user-agent': CHROME } });
    assert.deepEqual([events[2].tenant, events[2].engagement?.first], ['acme/eu', true]);
  });

  test('a click: 302 to the signed URL, a clicked event with link index and URL', async () => {
    const { app, events } = setup();
    const res = await app.inject({ url: path(clickUrl(keyring, BASE, copy('acme/eu'), 2, DEST)), headers: { 'user-agent': CHROME }, remoteAddress: '2001:db8:abcd:12::1' });
    assert.equal(res.statusCode, 302);
    assert.equal(res.headers.location, new URL(DEST).href);
    assert.match(String(res.headers['cache-control']), /no-store/);
    assert.equal(events[0].type, 'clicked');
    assert.equal(events[0].tenant, 'acme/eu');
    assert.deepEqual(events[0].engagement, { first: true, machine: false, linkIndex: 2, url: DEST, ip: '2001:db8:abcd::', userAgent: CHROME });
  });

  test('tampered URL, tampered token, unsigned, wrong key, repeated u, open token as click: 404 plain page, no redirect, no event', async () => {
    const { app, events } = setup();
    const good = new URL(clickUrl(keyring, BASE, copy(), 0, DEST));
    const token = good.pathname.split('/')[2];
    const other = new FeedbackKeyring([{ id: 4, secret: 'somebody-elses-secret-0123456789abcdefgh' }]);
    const flipped = token.slice(0, 10) + (token[10] === 'a' ? 'b' : 'a') + token.slice(11);
    const openToken = pixelUrl(keyring, BASE, copy()).split('/o/')[1].slice(0, -4);
    const bad = [
      `/c/${token}?u=${encodeURIComponent(DEST.replace('42', '43'))}`,
      `/c/${token}?u=${encodeURIComponent('https://evil.example/')}`,
      `/c/${flipped}?u=${encodeURIComponent(DEST)}`,
      `/c/${token}`,
      `/c/${token}?u=${encodeURIComponent(DEST)}&u=${encodeURIComponent(DEST)}`,
      `/c/x?u=${encodeURIComponent(DEST)}`,
      path(clickUrl(other, BASE, copy(), 0, DEST)),
      `/c/${openToken}?u=${encodeURIComponent(DEST)}`,
      `/o/${flipped}.gif`,
      `/o/${openToken}`,
      path(pixelUrl(other, BASE, copy())),
      '/',
    ];
    for (const url of bad) {
      const res = await app.inject({ url });
      assert.equal(res.statusCode, 404, url);
      assert.equal(res.headers.location, undefined);
      assert.match(String(res.headers['content-type']), /^text\/plain/);
    }
    assert.equal(events.length, 0);
    // And the untouched link still works.
    assert.equal((await app.inject({ url: good.pathname + good.search })).statusCode, 302);
  });

  test('machine hits are flagged, not dropped: Apple MPP, scanners, HEAD, too soon, click bursts', async () => {
    const { app, events } = setup();
    await app.inject({ url: path(pixelUrl(keyring, BASE, copy())), headers: { 'user-agent': 'Mozilla/5.0' }, remoteAddress: '17.58.1.2' });
    await app.inject({ method: 'HEAD', url: path(clickUrl(keyring, BASE, copy(), 0, DEST)), headers: { 'user-agent': CHROME } });
    await app.inject({ url: path(clickUrl(keyring, BASE, copy(), 1, 'https://shop.example/a')), headers: { 'user-agent': 'Barracuda Sentinel (EE)' } });
    await app.inject({ url: path(clickUrl(keyring, BASE, copy(), 2, 'https://shop.example/b')), headers: { 'user-agent': CHROME } });
    assert.deepEqual(
      events.map((e) => [e.type, e.engagement?.machine, e.engagement?.machineReason]),
      [
        ['opened', true, 'apple-mpp'],
        ['clicked', true, 'head-request'],
        ['clicked', true, 'user-agent'],
        ['clicked', true, 'click-burst'],
      ],
    );
    const soon = setup(ISSUED * 1000 + 500);
    await soon.app.inject({ url: path(pixelUrl(keyring, BASE, copy())), headers: { 'user-agent': CHROME } });
    assert.equal(soon.events[0].engagement?.machineReason, 'too-soon');
  });

  test('each distinct user agent is classified once (isbot is a long pattern), and every hit is still flagged', async () => {
    const seen: string[] = [];
    const isBot = (ua: string) => (seen.push(ua), isBotUserAgent(ua));
    const { app, events } = setup(undefined, { isBot });
    const scanner = 'Barracuda Sentinel (EE)';
    for (const ua of [scanner, CHROME, scanner, CHROME, scanner]) {
      assert.equal((await app.inject({ url: path(pixelUrl(keyring, BASE, copy())), headers: { 'user-agent': ua } })).statusCode, 200);
    }
    assert.deepEqual(seen, [scanner, CHROME]);
    assert.deepEqual(
      events.map((e) => e.engagement?.machineReason ?? 'person'),
      ['user-agent', 'person', 'user-agent', 'person', 'user-agent'],
    );
  });

  test('a hit that cannot be recorded still gets its redirect and pixel, and the failure is logged', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
    const app = buildTrackerApp({
      keyring,
      buffer: { push: () => { throw new Error('queue exploded'); } },
      memory: new EngagementMemory(1000),
      rules: { appleProxyRanges: [], withinSeconds: 2, clickBurstMs: 1000 },
      logger,
    });
    const click = await app.inject({ url: path(clickUrl(keyring, BASE, copy(), 0, DEST)), headers: { 'user-agent': CHROME } });
    assert.equal(click.statusCode, 302);
    assert.equal((await app.inject({ url: path(pixelUrl(keyring, BASE, copy())), headers: { 'user-agent': CHROME } })).statusCode, 200);
    const failures = lines.filter((l) => l.msg === 'tracked hit could not be recorded');
    assert.equal(failures.length, 2);
    assert.equal(failures[0].messageId, 'msg-1');
  });

  test('a handler error is a plain 500, logged with its route (request logging is off)', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
    const app = buildTrackerApp({ keyring, buffer: { push: () => true }, memory: new EngagementMemory(1000), rules: { appleProxyRanges: [], withinSeconds: 2, clickBurstMs: 1000 }, logger });
    app.get('/boom', async () => {
      throw new Error('kaput');
    });
    const res = await app.inject({ url: '/boom' });
    assert.equal(res.statusCode, 500);
    assert.doesNotMatch(res.body, /kaput/);
    const logged = lines.find((l) => l.msg === 'tracker request failed');
    assert.ok(logged, 'the 500 is logged');
    assert.equal(logged.route, '/boom');
  });

  test('no child logger per request (pino re-applies its redaction paths on each child)', async () => {
    const logger = pino({ level: 'silent', redact: ['req.headers.authorization'] });
    let children = 0;
    const child = logger.child.bind(logger);
    logger.child = ((...args: Parameters<typeof child>) => (children++, child(...args))) as typeof logger.child;
    const { app } = setup(undefined, { logger });
    await app.ready();
    children = 0;
    for (let i = 0; i < 3; i++) assert.equal((await app.inject({ url: path(clickUrl(keyring, BASE, copy(), i, DEST)), headers: { 'user-agent': CHROME } })).statusCode, 302);
    assert.equal((await app.inject({ url: path(pixelUrl(keyring, BASE, copy())), headers: { 'user-agent': CHROME } })).statusCode, 200);
    assert.equal(children, 0);
  });
});
