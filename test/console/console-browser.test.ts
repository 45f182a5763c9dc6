/**
 * The console in a real browser (Debian's chromium, playwright-core) against `postline start`
 * as a user runs it (every stage, the embedded broker, analytics on chDB, the capture SMTP
 * server): sign in with the printed demo key, send through the API and see the message on the
 * overview's live feed within a second, open its timeline, edit a template with its live
 * preview (an error shown at its line), replay the dead letter the broken template caused, then
 * as the printed admin key create a key (shown once), use it, revoke it (the API then answers
 * 401 and a console session signed in with it ends), add a webhook endpoint and replay the sent
 * message to it (its failed attempts in the delivery log), and see a source address a dispatcher
 * paused on the pools and sites page and resume it. axe-core finds no serious or critical
 * violation on any page at 1280×800 and 390×844; the first load is at most 300 KB of JS and CSS.
 * Screenshots of every page at both sizes go to the test output directory (and to
 * POSTLINE_CONSOLE_SCREENSHOTS when set: `POSTLINE_CONSOLE_SCREENSHOTS=docs/console` refreshes
 * the README's).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startLauncher, type Launcher } from '../embedded/launcher-process.js';
import { waitFor } from '../helpers/broker.js';
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { EmailEventContract, type EmailEvent } from '../../shared/contracts/email-event.js';
import type { EventInput } from '../../shared/events.js';
import { Topics } from '../../shared/topics.js';
import { siteLimitsEvent, sourcePausedEvent } from '../../services/dispatcher/shaping/ops-events.js';
import { chromiumPath, launchBrowser, screenshot, screenshotDirs, seriousViolations, SIZES, type SizeName } from './browser.js';

let launcher: Launcher | undefined;
let browser: Browser | undefined;
after(async () => {
  await browser?.close().catch(() => undefined);
  await launcher?.destroy();
});

const json = { 'content-type': 'application/json' };

async function signIn(page: Page, base: string, key: string): Promise<void> {
  await page.goto(`${base}/console/`);
  assert.match(page.url(), /\/console\/login/, 'a signed-out visitor is sent to sign-in');
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((u) => !u.pathname.endsWith('/login'));
}

/** axe on the page as it is; fails naming every serious or critical violation. */
async function accessible(page: Page, what: string): Promise<void> {
  const found = await seriousViolations(page);
  assert.deepEqual(
    found.map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => JSON.stringify(n.target)).join(', ')}`),
    [],
    `${what}: serious or critical accessibility violations`,
  );
}

test('the console in chromium: live overview, timeline, template preview, dead-letter replay, keys', { skip: chromiumPath() ? false : 'chromium is not installed', timeout: 600_000 }, async (t) => {
  launcher = await startLauncher();
  const base = `http://127.0.0.1:${launcher.ports.api}`;
  const outbox = `http://127.0.0.1:${launcher.ports.outbox}/v1/dev/outbox`;
  const demoKey = launcher.key;
  const adminKey = /Admin key\s+(\S+)/.exec(launcher.output())?.[1] ?? '';
  assert.match(launcher.output(), new RegExp(`Console\\s+${base.replace(/\./g, '\\.')}/console`), 'npm start prints the console URL');
  const api = (path: string, init: RequestInit & { key?: string } = {}) => fetch(`${base}${path}`, { ...init, headers: { ...json, authorization: `Bearer ${init.key ?? demoKey}`, ...(init.headers as Record<string, string>) } });
  const dirs = screenshotDirs();
  t.diagnostic(`screenshots in ${dirs.join(' and ')}`);
  browser = await launchBrowser();

  const desktop: BrowserContext = await browser.newContext({ viewport: SIZES.desktop });
  const page = await desktop.newPage();

  // First load: every byte of JS and CSS the sign-in and overview pages fetch.
  const assets = new Map<string, number>();
  page.on('response', (r) => {
    const type = r.request().resourceType();
    if (type === 'script' || type === 'stylesheet') void r.body().then((b) => assets.set(r.url(), b.length)).catch(() => undefined);
  });
  const live = page.waitForResponse((r) => r.url().endsWith('/console/live') && r.status() === 200, { timeout: 60_000 });
  await signIn(page, base, demoKey);
  await live;
  await page.waitForLoadState('networkidle').catch(() => undefined);
  const assetBytes = [...assets.values()].reduce((a, b) => a + b, 0);
  t.diagnostic(`first load: ${assetBytes} bytes of JS and CSS (${[...assets.keys()].map((u) => u.split('/').pop()).join(', ')})`);
  assert.ok(assetBytes > 0 && assetBytes <= 300 * 1024, `first load is at most 300 KB of JS and CSS (${assetBytes})`);
  const cookie = (await desktop.cookies()).find((c) => c.name === 'postline_console');
  assert.ok(cookie?.httpOnly, 'the session cookie is HttpOnly');
  assert.equal(cookie?.sameSite, 'Strict');
  assert.ok(!cookie?.value.includes(demoKey), 'the cookie does not carry the key in clear');

  // Sent through the API: on the live feed within a second.
  const sent = await api('/v1/emails', { method: 'POST', body: JSON.stringify({ from: 'Demo <demo@example.com>', to: ['you@example.org'], subject: 'Hello from the console test', text: 'It works.', tags: ['launch'] }) });
  assert.equal(sent.status, 202);
  const acceptedAt = Date.now();
  const { id } = (await sent.json()) as { id: string };
  await page.locator('#feed li', { hasText: id }).first().waitFor({ timeout: 10_000 });
  const appearedMs = Date.now() - acceptedAt;
  t.diagnostic(`the message appeared on the overview ${appearedMs} ms after the API accepted it`);
  assert.ok(appearedMs <= 1000, `the message appears on the overview within 1 s (${appearedMs} ms)`);
  await page.locator('#feed li.ev-sent', { hasText: id }).first().waitFor({ timeout: 30_000 });
  await page.locator('#stats a', { hasText: 'launch' }).waitFor({ timeout: 10_000 });
  await accessible(page, 'overview');
  await screenshot(page, 'overview', 'desktop', dirs);

  // Its timeline, once analytics has stored its events.
  await page.locator('#feed li', { hasText: id }).first().getByRole('link', { name: id }).click();
  await waitFor(async () => {
    const ok = (await page.locator('table.timeline th', { hasText: 'sent' }).count()) > 0;
    if (!ok) await page.reload();
    return ok;
  }, 60_000, 'the timeline shows the message sent');
  assert.match(await page.locator('table.timeline').innerText(), /accepted[\s\S]*sent/);
  assert.match(await page.locator('table.timeline').innerText(), /\b250\b/, 'the SMTP reply is on the timeline');
  assert.ok(await page.getByRole('heading', { name: 'Where the time went' }).isVisible());
  await accessible(page, 'message timeline');
  await screenshot(page, 'message', 'desktop', dirs);
  await page.goto(`${base}/console/messages?recipient=you%40example.org`);
  await page.getByRole('link', { name: id }).waitFor();
  await accessible(page, 'messages');
  await screenshot(page, 'messages', 'desktop', dirs);

  // A template that needs data the message lacks: the message becomes a dead letter.
  assert.equal((await api('/v1/templates/greeting', { method: 'PUT', body: JSON.stringify({ subject: 'Hello {{name}}', text: 'Hi {{name}}, welcome.' }) })).status, 201);
  const broken = await api('/v1/emails', { method: 'POST', body: JSON.stringify({ from: 'Demo <demo@example.com>', to: ['ada@example.org'], template: { name: 'greeting', data: {} } }) });
  assert.equal(broken.status, 202);
  const { id: brokenId } = (await broken.json()) as { id: string };

  // The template edited in the console: the preview follows, an error is shown at its line.
  await page.goto(`${base}/console/templates/greeting`);
  await page.getByLabel('Sample data (JSON, for the preview only)').fill('{"name": "Ada"}');
  await waitFor(async () => (await page.locator('#preview-subject').innerText()) === 'Hello Ada', 10_000, 'the preview renders the sample data');
  await page.getByLabel('HTML').fill('<p>Hi {{name}},</p>\n{{#if name}}<p>welcome</p>');
  await page.locator('.preview-errors', { hasText: 'html, line 2' }).waitFor({ timeout: 10_000 });
  await accessible(page, 'template editor with an error');
  await page.getByLabel('HTML').fill('<h2>Welcome</h2>\n<p>Hi {{default name "there"}}, we are glad you are here.</p>');
  await page.getByLabel('Subject').fill('Hello {{default name "there"}}');
  await page.getByLabel('Text').fill('Hi {{default name "there"}}, welcome.');
  await page.getByLabel('Sample data (JSON, for the preview only)').fill('{}');
  await waitFor(async () => (await page.locator('#preview-subject').innerText()) === 'Hello there', 10_000, 'the preview changes with the template');
  await screenshot(page, 'template', 'desktop', dirs);
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByText('Saved as version 2').waitFor();

  // The dead letter, inspected and replayed: the fixed template renders it and it goes out.
  await page.goto(`${base}/console/dead-letters`);
  await waitFor(async () => {
    const ok = (await page.getByRole('link', { name: brokenId }).count()) > 0;
    if (!ok) await page.reload();
    return ok;
  }, 30_000, 'the dead letter is listed');
  await accessible(page, 'dead letters');
  await screenshot(page, 'dead-letters', 'desktop', dirs);
  await page.getByRole('link', { name: brokenId }).click();
  assert.match(await page.locator('dl.facts').first().innerText(), /TEMPLATE_RENDER_FAILED/);
  await accessible(page, 'dead letter');
  await page.getByRole('button', { name: 'Replay' }).click();
  await page.getByText('sent back to').waitFor();
  await waitFor(async () => {
    const list = (await (await fetch(outbox)).json()) as { messages: Array<{ messageId: string; subject?: string }> };
    return list.messages.some((m) => m.messageId.includes(brokenId));
  }, 30_000, 'the replayed message delivered');

  await page.goto(`${base}/console/suppressions`);
  await page.getByLabel('Address', { exact: true }).fill('Nobody@Example.org');
  await page.getByRole('button', { name: 'Suppress' }).click();
  await page.getByRole('rowheader', { name: 'nobody@example.org' }).waitFor();
  await accessible(page, 'suppressions');
  await screenshot(page, 'suppressions', 'desktop', dirs);

  // Webhooks: an endpoint added (its secret shown once), the earlier send replayed to it, the attempts in its delivery log.
  await page.goto(`${base}/console/webhooks`);
  await page.getByLabel('URL').fill('https://93.184.216.34/hooks/postline');
  await page.getByLabel('Description').fill('CRM');
  await page.getByLabel('email.sent').check();
  await page.getByLabel('email.bounced').check();
  await page.getByRole('button', { name: 'Add endpoint' }).click();
  assert.match(await page.getByLabel('Signing secret', { exact: true }).inputValue(), /^whsec_/);
  await accessible(page, 'webhooks (created)');
  await screenshot(page, 'webhooks', 'desktop', dirs);
  await page.getByRole('link', { name: 'https://93.184.216.34/hooks/postline' }).first().click();
  const hookUrl = page.url();
  await page.getByLabel('From (UTC)').fill(new Date(acceptedAt - 60_000).toISOString().slice(0, 16));
  await page.getByRole('button', { name: 'Replay' }).click();
  await page.getByText(/Replay queued: [1-9]\d* events/).waitFor();
  // 93.184.216.34 is not reachable from here: the attempts fail, and the log says how.
  await waitFor(async () => {
    const ok = (await page.locator('table td.o-failed').count()) > 0;
    if (!ok) await page.goto(hookUrl);
    return ok;
  }, 60_000, 'a delivery attempt in the log');
  assert.match(await page.locator('dl.facts').innerText(), /failing/);
  await accessible(page, 'webhook endpoint');
  await screenshot(page, 'webhook', 'desktop', dirs);

  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByText('You are signed out.').waitFor();
  await accessible(page, 'sign-in');
  await screenshot(page, 'sign-in', 'desktop', dirs);

  // The admin key: create a key (shown once), use it, revoke it.
  await signIn(page, base, adminKey);
  await page.goto(`${base}/console/keys`);
  // A tenant created, and a sender domain added to it.
  await page.getByLabel('New tenant').fill('demo-eu');
  await page.getByRole('button', { name: 'Create tenant' }).click();
  await page.getByText('Tenant demo-eu created').waitFor();
  await page.locator('#d-tenant').selectOption('demo-eu');
  await page.getByLabel('Domain (or *.example.com)').fill('Mail.Demo-EU.example');
  await page.getByRole('button', { name: 'Add domain' }).click();
  await page.getByRole('rowheader', { name: 'mail.demo-eu.example' }).waitFor();
  await page.getByLabel('Name').fill('ci sender');
  await page.getByRole('button', { name: 'Create key' }).click();
  const created = await page.getByLabel(/Key “ci sender”/).inputValue();
  assert.match(created, /^pl_[0-9a-f]{16}_/);
  const keyId = created.split('_')[1];
  assert.equal((await api('/v1/emails', { method: 'POST', key: created, body: JSON.stringify({ from: 'Demo <demo@example.com>', to: ['x@example.org'], subject: 'new key', text: 'x' }) })).status, 202);
  await accessible(page, 'keys (created)');
  await screenshot(page, 'keys', 'desktop', dirs);
  const other = await browser.newContext({ viewport: SIZES.desktop });
  const otherPage = await other.newPage();
  await signIn(otherPage, base, created);
  await page.goto(`${base}/console/keys`);
  assert.ok(!(await page.content()).includes(created), 'the key is shown once only');
  await page.getByRole('button', { name: new RegExp(`Revoke key ci sender \\(${keyId}\\)`) }).click();
  await page.getByRole('row', { name: /ci sender/ }).getByText(/revoked/).waitFor();
  await waitFor(async () => (await api('/v1/emails', { method: 'POST', key: created, body: JSON.stringify({ from: 'Demo <demo@example.com>', to: ['x@example.org'], subject: 'revoked', text: 'x' }) })).status === 401, 5000, 'the revoked key gets 401');
  await otherPage.goto(`${base}/console/templates`);
  assert.match(otherPage.url(), /\/console\/login\?ended=revoked/, 'a session of the revoked key ends at its next request');
  await other.close();

  // Pools and sites (admin): what a dispatcher announces on email.events, and a resume every dispatcher applies.
  const kafka = new Kafka({ clientId: 'console-browser-test', brokers: [`127.0.0.1:${launcher.ports.broker}`], logLevel: logLevel.NOTHING });
  const producer = kafka.producer();
  await producer.connect();
  const announce = (input: EventInput) => {
    const e = { schemaVersion: 1, eventId: randomUUID(), at: new Date().toISOString(), stage: 'dispatcher', ...input } as EmailEvent;
    return producer.send({ topic: Topics.events, messages: [{ key: '', value: EmailEventContract.encode(e) }] });
  };
  await announce(sourcePausedEvent({ target: '192.0.2.25', kind: 'source', reason: 'complaint-rate', rate: 0.0042, sample: 2400, until: Date.now() + 3_600_000 }));
  await announce(siteLimitsEvent({ source: '192.0.2.26', site: 'yahoo', to: { factor: 0.25, maxConnections: 2, perSecond: 5 }, reason: 'throttled' }));
  await producer.disconnect();
  await page.goto(`${base}/console/health`);
  // Both announcements, read by the console's tail (a follower: events a moment apart may come a fetch apart).
  const siteLimits = /yahoo\s+192\.0\.2\.26\s+25\.0 % of the rule/;
  await waitFor(async () => {
    const ok = (await page.getByRole('button', { name: 'Resume source 192.0.2.25' }).count()) > 0 && siteLimits.test(await page.getByRole('region', { name: 'Site limits per source address' }).innerText());
    if (!ok) await page.reload();
    return ok;
  }, 10_000, 'the pause and the site limits on the pools and sites page');
  await accessible(page, 'pools and sites');
  await screenshot(page, 'health', 'desktop', dirs);
  await page.getByRole('button', { name: 'Resume source 192.0.2.25' }).click();
  await page.getByText('192.0.2.25 resumed').waitFor();

  // Every page at phone size, keyboard first: the skip link is the first stop.
  const phone = await browser.newContext({ viewport: SIZES.phone, isMobile: true, hasTouch: true });
  const p = await phone.newPage();
  await signIn(p, base, demoKey);
  await p.keyboard.press('Tab');
  assert.equal(await p.evaluate(() => document.activeElement?.textContent), 'Skip to content');
  const pages: Array<[string, string]> = [
    ['overview', '/console/'],
    ['messages', '/console/messages'],
    ['message', `/console/messages/${id}`],
    ['templates', '/console/templates'],
    ['template', '/console/templates/greeting'],
    ['dead-letters', '/console/dead-letters'],
    ['suppressions', '/console/suppressions'],
    ['webhooks', '/console/webhooks'],
    ['webhook', new URL(hookUrl).pathname],
    ['health', '/console/health'],
    ['keys', '/console/keys'],
  ];
  for (const [name, url] of pages) {
    await p.goto(`${base}${url}`);
    await accessible(p, `${name} at 390×844`);
    const overflow = await p.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 1, `${name} fits 390 px without sideways scrolling (${overflow}px over)`);
    await screenshot(p, name, 'phone' satisfies SizeName, dirs);
  }
  await phone.close();
  await desktop.close();
});
