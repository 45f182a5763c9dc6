/**
 * The console over HTTP, on a real ingest (embedded broker, email.admin, templates,
 * suppressions, dead letters, its own read of email.events): sign-in and the session cookie,
 * CSRF on every POST, scopes deciding what a key may see and do, tenants `acme` and `acme/eu`
 * (a prefix of each other) seeing only their own data, an admin switching tenant, keys created
 * (shown once) and revoked (the API answers 401 and the key's console sessions end at their
 * next request), and the live feed by SSE: a message sent through the API reaches its
 * tenant's stream within a second and no other tenant's.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { IngestHarness, KEYS, email } from '../ingest/ingest-harness.js';
import { hashApiKey } from '../../shared/http/api-keys.js';
import type { IngestHandle } from '../../services/ingest/main.js';
import { InjectClient } from './inject-client.js';

const ADMIN_KEY = 'pl_test_console_admin_key_0123456789';
let h: IngestHarness;
let ingest: IngestHandle;
const logLines: string[] = [];
/** Every key and session cookie this file used: none may reach a log line. */
const secrets = new Set<string>([ADMIN_KEY, ...Object.values(KEYS)]);

before(async () => {
  h = await IngestHarness.start();
  ingest = await h.ingest(
    { 'ingest.apiKeys': [...Object.entries(KEYS).map(([tenant, key]) => ({ tenant, keyHash: hashApiKey(key) })), { tenant: 'ops', keyHash: hashApiKey(ADMIN_KEY), scopes: ['admin', 'read', 'send'] }] },
    { listen: true, logger: pino({ level: 'trace' }, new Writable({ write: (chunk, _enc, done) => void (logLines.push(String(chunk)), done()) })) },
  );
});
after(async () => {
  await h?.stop();
});

const signedIn = async (key: string): Promise<InjectClient> => {
  const c = new InjectClient(ingest.app);
  const res = await c.signIn(key);
  assert.equal(res.statusCode, 303, res.body);
  secrets.add(key).add(c.cookie.split('=')[1]);
  return c;
};

test('sign-in: a wrong key is refused; a good one gets an HttpOnly, SameSite=Strict cookie on /console holding no key in clear', async () => {
  const anon = new InjectClient(ingest.app);
  const first = await anon.get('/console/');
  assert.equal(first.statusCode, 303);
  assert.equal(first.headers.location, '/console/login');
  const refused = await anon.signIn('pl_not_a_key');
  assert.equal(refused.statusCode, 401);
  assert.match(refused.body, /not accepted/);
  assert.equal((await anon.get('/console/')).statusCode, 303, 'still signed out');

  const c = new InjectClient(ingest.app);
  await c.get('/console/login');
  const res = await c.post('/console/login', { key: KEYS.acme });
  assert.equal(res.headers.location, '/console/');
  const set = String(res.headers['set-cookie']);
  assert.match(set, /postline_console=/);
  assert.match(set, /HttpOnly/);
  assert.match(set, /SameSite=Strict/);
  assert.match(set, /Path=\/console/);
  assert.doesNotMatch(set, /Secure/, 'plain http: no Secure flag (it is set over https)');
  assert.ok(!decodeURIComponent(set).includes(KEYS.acme), 'the key is sealed, not in clear');
  const home = await c.get('/console/');
  assert.equal(home.statusCode, 200);
  assert.match(home.headers['content-security-policy'] as string, /script-src 'self'/);
  assert.doesNotMatch(home.body, /<script>(?!<\/script>)/, 'no inline script');
  assert.ok(!home.body.includes(KEYS.acme), 'the page never shows the key');

  const out = await c.post('/console/logout');
  assert.equal(out.headers.location, '/console/login?ended=out');
  assert.equal(c.cookie, '', 'the cookie is cleared');
  assert.equal((await c.get('/console/templates')).statusCode, 303);
});

test('CSRF: a POST without the page\'s token is refused and changes nothing', async () => {
  const c = await signedIn(KEYS.acme);
  await c.get('/console/suppressions');
  const forged = await c.post('/console/suppressions', { address: 'forged@example.org', _csrf: '' });
  assert.equal(forged.statusCode, 403);
  assert.match(forged.body, /reload the page/);
  const other = await signedIn(KEYS['acme/eu']);
  const crossSession = await c.post('/console/suppressions', { address: 'forged@example.org', _csrf: other.csrf });
  assert.equal(crossSession.statusCode, 403, 'another session\'s token does not count');
  assert.doesNotMatch((await c.get('/console/suppressions')).body, /forged@example\.org/);
  await c.get('/console/suppressions');
  const ok = await c.post('/console/suppressions', { address: 'Real@Example.org' });
  assert.equal(ok.statusCode, 200);
  assert.match(ok.body, /real@example\.org is suppressed/);
  const login = await new InjectClient(ingest.app).post('/console/login', { key: KEYS.acme });
  assert.equal(login.statusCode, 403, 'sign-in itself needs the sign-in page\'s token');
});

test('acme and acme/eu: templates and suppressions of one are never seen by the other', async () => {
  const acme = await signedIn(KEYS.acme);
  const eu = await signedIn(KEYS['acme/eu']);
  await acme.get('/console/templates/welcome');
  const saved = await acme.post('/console/templates/welcome', { subject: 'Hi {{name}}', text: 'Hello {{name}}' });
  assert.equal(saved.statusCode, 303);
  assert.match((await acme.get('/console/templates')).body, /href="\/console\/templates\/welcome"/);
  assert.doesNotMatch((await eu.get('/console/templates')).body, /welcome/);
  assert.match((await eu.get('/console/templates/welcome')).body, /<small>new<\/small>/);
  await eu.get('/console/suppressions');
  await eu.post('/console/suppressions', { address: 'only-eu@example.org' });
  assert.match((await eu.get('/console/suppressions')).body, /only-eu@example\.org/);
  assert.doesNotMatch((await acme.get('/console/suppressions')).body, /only-eu@example\.org/);
});

test('the preview shows a Handlebars error at its line; saving needs the send scope', async () => {
  const admin = await signedIn(ADMIN_KEY);
  await admin.get('/console/keys');
  const created = await admin.post('/console/keys', { tenant: 'acme', name: 'reader', scopes: ['read'] });
  assert.equal(created.statusCode, 201);
  const readKey = /id="created-key" readonly value="([^"]+)"/.exec(created.body)?.[1];
  assert.ok(readKey);
  const reader = await signedIn(readKey);
  const page = await reader.get('/console/templates/welcome');
  assert.match(page.body, /Saving needs a key with the <code>send<\/code> scope/);
  const preview = await reader.post('/console/templates/welcome/preview', { subject: 'Hi', html: '<p>a</p>\n{{#each x}}\n<p>b</p>{{/if}}', sample: '{}' }, { 'hx-request': 'true' });
  assert.equal(preview.statusCode, 200);
  assert.match(preview.body, /<strong>html, line 2<\/strong>/);
  const acme = await signedIn(KEYS.acme);
  await acme.get('/console/templates/broken');
  const refused = await acme.post('/console/templates/broken', { subject: 'Hi', html: '<p>a</p>\n{{#if x}}' });
  assert.equal(refused.statusCode, 400);
  assert.match(refused.body, /Not saved:[\s\S]*<code>html<\/code>/);
  assert.match(refused.body, /\{\{#if x\}\}<\/textarea>/, 'what was typed is kept in the editor');
  assert.match((await acme.get('/console/templates/broken')).body, /<small>new<\/small>/, 'nothing was stored');
  const save = await reader.post('/console/templates/welcome', { subject: 'Changed', text: 'x' });
  assert.equal(save.statusCode, 403);
  assert.match(save.body, /does not have the &quot;send&quot; scope/);
});

test('keys: an admin creates a key (shown once) and revokes it: the API refuses it and its console session ends', async () => {
  const admin = await signedIn(ADMIN_KEY);
  await admin.get('/console/keys');
  const created = await admin.post('/console/keys', { tenant: 'acme/eu', name: 'deploy bot', scopes: ['send', 'read'] });
  const key = /id="created-key" readonly value="([^"]+)"/.exec(created.body)?.[1] ?? '';
  const id = key.split('_')[1];
  assert.equal(created.headers['cache-control'], 'no-store');
  const send = () => ingest.app.inject({ method: 'POST', url: '/v1/emails', headers: { authorization: `Bearer ${key}` }, payload: email() });
  assert.equal((await send()).statusCode, 202);
  const listed = await admin.get('/console/keys');
  assert.match(listed.body, new RegExp(`<code>${id}</code>`));
  assert.ok(!listed.body.includes(key), 'listed, never shown again');

  const bot = await signedIn(key);
  assert.equal((await bot.get('/console/templates')).statusCode, 200);
  assert.equal((await bot.get('/console/keys')).statusCode, 200, 'a read key sees its tenant\'s keys');
  assert.equal((await bot.post(`/console/keys/${id}/revoke`)).statusCode, 403, 'only an admin revokes');

  const revoked = await admin.post(`/console/keys/${id}/revoke`);
  assert.equal(revoked.statusCode, 303);
  assert.equal((await send()).statusCode, 401, 'the API refuses the revoked key');
  const after = await bot.get('/console/templates');
  assert.equal(after.statusCode, 303);
  assert.equal(after.headers.location, '/console/login?ended=revoked');
  assert.match((await bot.get('/console/login?ended=revoked')).body, /no longer valid/);
});

test('an admin switches tenant and sees that tenant\'s data; other keys cannot switch', async () => {
  const acme = await signedIn(KEYS.acme);
  await acme.get('/console/templates/switch-check');
  await acme.post('/console/templates/switch-check', { subject: 'S', text: 'T' });
  const admin = await signedIn(ADMIN_KEY);
  const before = await admin.get('/console/templates');
  assert.doesNotMatch(before.body, /switch-check/, 'the admin key\'s own tenant first');
  assert.match(before.body, /<option value="acme\/eu">/);
  const switched = await admin.post('/console/tenant', { tenant: 'acme', back: '/console/templates' });
  assert.equal(switched.headers.location, '/console/templates');
  assert.match((await admin.get('/console/templates')).body, /switch-check/);
  assert.equal((await admin.post('/console/tenant', { tenant: 'nobody' })).statusCode, 404);
  assert.equal((await acme.post('/console/tenant', { tenant: 'acme/eu' })).statusCode, 403);
});

test('live feed: a message sent through the API reaches its tenant\'s stream within 1 s, and no other tenant\'s', async () => {
  const acme = await signedIn(KEYS.acme);
  const eu = await signedIn(KEYS['acme/eu']);
  const open = async (c: InjectClient) => {
    const ctrl = new AbortController();
    const res = await fetch(`${ingest.address}/console/live`, { headers: { cookie: c.cookie, accept: 'text/event-stream' }, signal: ctrl.signal });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
    let text = '';
    const reader = res.body!.getReader();
    void (async () => {
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return;
          text += Buffer.from(value).toString('utf8');
        }
      } catch {
        // aborted
      }
    })();
    return { text: () => text, close: () => ctrl.abort() };
  };
  const mine = await open(acme);
  const theirs = await open(eu);
  try {
    const res = await fetch(`${ingest.address}/v1/emails`, { method: 'POST', headers: { authorization: `Bearer ${KEYS.acme}`, 'content-type': 'application/json' }, body: JSON.stringify(email({ tags: ['wave-1'] })) });
    assert.equal(res.status, 202);
    const acceptedAt = Date.now();
    const { id } = (await res.json()) as { id: string };
    while (!mine.text().includes(id) && Date.now() - acceptedAt < 5000) await new Promise((r) => setImmediate(r));
    const ms = Date.now() - acceptedAt;
    assert.ok(mine.text().includes(id), 'the event reached the stream');
    assert.ok(ms <= 1000, `within 1 s (${ms} ms)`);
    assert.match(mine.text(), /event: feed\ndata: <li class="ev ev-accepted">/);
    const page = await acme.get('/console/');
    assert.match(page.body, new RegExp(`href="/console/messages/${id}"`), 'the overview page lists it too');
    assert.match(page.body, /wave-1/, 'its tag shows');
    assert.ok(!theirs.text().includes(id), 'acme/eu never sees acme\'s event');
    assert.doesNotMatch((await eu.get('/console/')).body, new RegExp(id));
  } finally {
    mine.close();
    theirs.close();
  }
});

test('a test email from the overview is accepted like an API request, and a bad one says why', async () => {
  const acme = await signedIn(KEYS.acme);
  await acme.get('/console/');
  const bad = await acme.post('/console/send', { from: 'Sender <sender@example.com>', to: 'not-an-address', subject: 'Hi', text: 'x' });
  assert.equal(bad.statusCode, 400);
  assert.match(bad.body, /role="alert">[^<]*to/);
  const sent = await acme.post('/console/send', { from: 'Sender <sender@example.com>', to: 'rcpt@example.org', subject: 'From the console', text: 'x', tag: 'console-test' });
  assert.equal(sent.statusCode, 303);
  const id = /sent=([0-9a-f-]{36})/.exec(String(sent.headers.location))?.[1];
  assert.ok(id, String(sent.headers.location));
  const page = await acme.get(String(sent.headers.location));
  assert.match(page.body, new RegExp(`Accepted as <a href="/console/messages/${id}">`));
  const reader = await signedIn(ADMIN_KEY);
  await reader.get('/console/');
  await reader.post('/console/tenant', { tenant: 'acme' });
  const sentAsAdmin = await reader.post('/console/send', { from: 'Sender <sender@example.com>', to: 'rcpt@example.org', subject: 'x', text: 'x' });
  assert.equal(sentAsAdmin.statusCode, 303, 'an admin with send sends as the tenant it switched to');
});

test('no key and no session cookie ever appears in the logs', () => {
  const all = logLines.join('');
  assert.ok(all.includes('console sign-in'), 'sign-ins were logged (tenant and key id only)');
  assert.ok(all.includes('API key revoked from the console'));
  assert.ok(secrets.size > 5);
  for (const s of secrets) assert.ok(!all.includes(s), 'a key or a session cookie was logged');
  assert.equal([...all.matchAll(/pl_[0-9a-f]{16}_[A-Za-z0-9_-]{43}/g)].length, 0, 'something shaped like a key was logged');
});
