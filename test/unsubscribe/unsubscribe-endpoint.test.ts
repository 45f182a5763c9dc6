/**
 * `/u/<token>` on the send API against an embedded broker (ingest started in-process, requests
 * by `inject`): a GET shows a page and never unsubscribes; every POST (RFC 8058 one-click, form
 * or multipart, or the page's button) emits exactly one `unsubscribed` event with the tenant,
 * recipient and list of the token; a tampered, foreign or wrong-purpose token is a 404 page and
 * never a redirect; tenants `acme` and `acme/eu` stay apart; the endpoint has its own rate limit.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Topics } from '../../shared/topics.js';
import { FeedbackKeyring, type RefInput } from '../../shared/feedback/feedback-token.js';
import type { IngestHandle } from '../../services/ingest/main.js';
import { IngestHarness, auth } from '../ingest/ingest-harness.js';
import { waitFor } from '../helpers/broker.js';

const KEY = { id: 3, secret: 'unsubscribe-endpoint-test-secret-0123456789abcdef' };
const keyring = new FeedbackKeyring([KEY]);
const otherKeyring = new FeedbackKeyring([{ id: 3, secret: 'another-deployment-secret-0123456789abcdef' }]);

let h: IngestHarness;
let ingest: IngestHandle;

before(async () => {
  h = await IngestHarness.start();
  ingest = await h.ingest({ 'feedback.keys': [KEY], 'ingest.unsubscribe.rateLimitMax': 0 });
  await h.collect();
});
after(() => h.stop());

function tokenFor(ref: Partial<RefInput> = {}, ring = keyring): { token: string; messageId: string } {
  const messageId = randomUUID();
  const token = ring.sign({ purpose: 'unsubscribe', messageId, tenant: 'acme', recipient: 'jane@example.org', fromDomain: 'shop.example', listId: 'weekly-news', ...ref });
  return { token, messageId: ref.messageId ?? messageId };
}

const oneClick = (token: string) =>
  ingest.app.inject({ method: 'POST', url: `/u/${token}`, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'List-Unsubscribe=One-Click' });

const eventsOf = (messageId: string) => h.on(Topics.events, messageId).map((r) => r.value);

/** Every event produced so far has been read: the count for a message is final. */
async function settled(): Promise<void> {
  await h.caughtUp();
}

describe('/u/<token>', () => {
  test('GET shows an accessible confirmation page with a POST button and emits nothing', async () => {
    const { token, messageId } = tokenFor();
    const before = await h.endOffset(Topics.events);
    const res = await ingest.app.inject({ method: 'GET', url: `/u/${token}` });
    assert.equal(res.statusCode, 200);
    assert.match(res.headers['content-type'] as string, /^text\/html; charset=utf-8/);
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.match(res.headers['content-security-policy'] as string, /default-src 'none'/);
    assert.match(res.body, /<html lang="en">/);
    assert.match(res.body, /Unsubscribe <strong>jane@example\.org<\/strong> from the list “weekly-news”\?/);
    assert.match(res.body, /<form method="post">\s*<button type="submit" name="unsubscribe" value="confirm">Unsubscribe<\/button>/);
    // Scanners follow links, sometimes with HEAD: neither unsubscribes.
    assert.equal((await ingest.app.inject({ method: 'HEAD', url: `/u/${token}` })).statusCode, 200);
    assert.equal(await h.endOffset(Topics.events), before, 'nothing produced');
    await settled();
    assert.deepEqual(eventsOf(messageId), []);
  });

  test('an RFC 8058 one-click POST emits one unsubscribed event (via one-click) per POST; a repeat answers the same 200', async () => {
    const { token, messageId } = tokenFor();
    const first = await oneClick(token);
    assert.equal(first.statusCode, 200);
    assert.match(first.body, /jane@example\.org<\/strong> is unsubscribed from the list “weekly-news”/);
    const [event] = await h.waitForKey(Topics.events, messageId);
    assert.equal(event.value.type, 'unsubscribed');
    assert.deepEqual(
      { tenant: event.value.tenant, recipients: event.value.recipients, via: event.value.via, listId: event.value.listId, fromDomain: event.value.fromDomain, stage: event.value.stage },
      { tenant: 'acme', recipients: ['jane@example.org'], via: 'one-click', listId: 'weekly-news', fromDomain: 'shop.example', stage: 'ingest' },
    );
    const again = await oneClick(token);
    assert.equal(again.statusCode, 200);
    assert.equal(again.body, first.body);
    await waitFor(() => eventsOf(messageId).length === 2, 10_000, 'the second POST’s event');
    await settled();
    assert.equal(eventsOf(messageId).length, 2, 'exactly one event per POST');
  });

  test('multipart/form-data one-click (RFC 8058’s SHOULD) and the page’s own button (via link) both unsubscribe', async () => {
    const multipart = tokenFor();
    const boundary = '----postline-test';
    const body = `--${boundary}\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\nOne-Click\r\n--${boundary}--\r\n`;
    const res = await ingest.app.inject({ method: 'POST', url: `/u/${multipart.token}`, headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, payload: body });
    assert.equal(res.statusCode, 200);
    assert.equal((await h.waitForKey(Topics.events, multipart.messageId))[0].value.via, 'one-click');

    const button = tokenFor({ listId: undefined });
    const page = await ingest.app.inject({ method: 'GET', url: `/u/${button.token}` });
    assert.match(page.body, /from mail from acme\?/);
    const clicked = await ingest.app.inject({ method: 'POST', url: `/u/${button.token}`, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'unsubscribe=confirm' });
    assert.equal(clicked.statusCode, 200);
    const [event] = await h.waitForKey(Topics.events, button.messageId);
    assert.equal(event.value.via, 'link');
    assert.equal('listId' in event.value, false, 'no list: the unsubscribe is tenant-wide');
  });

  test('a POST without one-click or the button, or with another content type, unsubscribes nobody', async () => {
    const { token, messageId } = tokenFor();
    const before = await h.endOffset(Topics.events);
    const empty = await ingest.app.inject({ method: 'POST', url: `/u/${token}`, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'List-Unsubscribe=Maybe' });
    assert.equal(empty.statusCode, 400);
    assert.match(empty.headers['content-type'] as string, /text\/html/);
    const json = await ingest.app.inject({ method: 'POST', url: `/u/${token}`, headers: { 'content-type': 'application/json' }, payload: '{"List-Unsubscribe":"One-Click"}' });
    assert.equal(json.statusCode, 415);
    const huge = await ingest.app.inject({ method: 'POST', url: `/u/${token}`, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `List-Unsubscribe=One-Click&x=${'a'.repeat(10_000)}` });
    assert.equal(huge.statusCode, 413);
    assert.equal(await h.endOffset(Topics.events), before);
    await settled();
    assert.deepEqual(eventsOf(messageId), []);
  });

  test('a tampered, truncated, foreign-key or wrong-purpose token is a 404 page, never a redirect, and emits nothing', async () => {
    const { token } = tokenFor();
    const flipped = token.slice(0, 10) + (token[10] === 'a' ? 'b' : 'a') + token.slice(11);
    const ref = keyring.sign({ purpose: 'ref', messageId: randomUUID(), tenant: 'acme', recipient: 'jane@example.org' });
    const returnPath = keyring.sign({ purpose: 'return-path', messageId: randomUUID(), tenant: 'acme', recipient: 'jane@example.org' });
    const before = await h.endOffset(Topics.events);
    for (const bad of [flipped, token.slice(0, -3), tokenFor({}, otherKeyring).token, ref, returnPath, 'not-a-token', '', `${token}/x`, 'a'.repeat(5000)]) {
      for (const method of ['GET', 'POST'] as const) {
        const res = await ingest.app.inject({ method, url: `/u/${bad}`, headers: { 'content-type': 'application/x-www-form-urlencoded' }, ...(method === 'POST' ? { payload: 'List-Unsubscribe=One-Click' } : {}) });
        assert.equal(res.statusCode, 404, `${method} ${bad.slice(0, 20)}`);
        assert.equal(res.headers.location, undefined);
        assert.match(res.headers['content-type'] as string, /text\/html/);
        assert.match(res.body, /not valid/);
      }
    }
    assert.equal(await h.endOffset(Topics.events), before, 'nothing produced');
  });

  test('tenants acme and acme/eu: the event belongs to the token’s tenant, whatever API key comes along', async () => {
    const eu = tokenFor({ tenant: 'acme/eu', listId: 'eu-news' });
    // An Authorization header is neither needed nor used: the token alone names the tenant.
    const res = await ingest.app.inject({ method: 'POST', url: `/u/${eu.token}`, headers: { ...auth('acme'), 'content-type': 'application/x-www-form-urlencoded' }, payload: 'List-Unsubscribe=One-Click' });
    assert.equal(res.statusCode, 200);
    const [event] = await h.waitForKey(Topics.events, eu.messageId);
    assert.deepEqual([event.value.tenant, event.value.listId], ['acme/eu', 'eu-news']);
    const acme = tokenFor({ tenant: 'acme', listId: 'eu-news' });
    await oneClick(acme.token);
    const [other] = await h.waitForKey(Topics.events, acme.messageId);
    assert.equal(other.value.tenant, 'acme');
    // A token's tenant cannot be changed: editing it breaks the MAC.
    assert.notEqual(eu.token, acme.token);
  });

  test('its own per-IP rate limit answers a 429 page (the client behind trusted proxies); without feedback keys there is no /u/', async () => {
    const limited = await h.ingest({ 'feedback.keys': [KEY], 'ingest.unsubscribe.rateLimitMax': 2, 'ingest.unsubscribe.rateLimitWindowMs': 60_000 });
    const { token } = tokenFor();
    const get = (ip: string) => limited.app.inject({ method: 'GET', url: `/u/${token}`, remoteAddress: ip });
    assert.equal((await get('198.51.100.7')).statusCode, 200);
    assert.equal((await get('198.51.100.7')).statusCode, 200);
    const over = await get('198.51.100.7');
    assert.equal(over.statusCode, 429);
    assert.match(over.headers['content-type'] as string, /text\/html/);
    assert.ok(Number(over.headers['retry-after']) > 0);
    assert.equal((await get('198.51.100.8')).statusCode, 200, 'another client is not limited');
    // Behind one proxy: the client is the last X-Forwarded-For entry, not the proxy.
    const proxied = await h.ingest({ 'feedback.keys': [KEY], 'ingest.unsubscribe.rateLimitMax': 1, 'ingest.unsubscribe.trustProxyHops': 1 });
    const via = (client: string) => proxied.app.inject({ method: 'GET', url: `/u/${token}`, remoteAddress: '10.0.0.2', headers: { 'x-forwarded-for': `203.0.113.99, ${client}` } });
    assert.equal((await via('198.51.100.20')).statusCode, 200);
    assert.equal((await via('198.51.100.21')).statusCode, 200, 'two clients behind one proxy are counted apart');
    assert.equal((await via('198.51.100.20')).statusCode, 429);
    const off = await h.ingest({});
    assert.equal((await off.app.inject({ method: 'GET', url: `/u/${token}` })).statusCode, 404);
  });
});
