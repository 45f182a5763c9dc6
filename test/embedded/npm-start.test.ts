/**
 * `npm start` as a user runs it: the launcher starts the broker, analytics, the other stages
 * together in one process, and the capture SMTP server; a curl-style POST is delivered and shows up in the outbox; a key the user
 * configured works next to the demo key; the inbound service takes a signed mailto unsubscribe
 * (key generated into the data dir, never printed); a message submitted to the SMTP gateway with
 * the demo key reaches the outbox; SIGINT stops every process. Runs the real
 * `postline start` command in a child process.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir, waitFor } from '../helpers/broker.js';
import { generateApiKey, hashApiKey } from '../../services/ingest/api-keys.js';
import { freePort } from '../helpers/free-port.js';
import nodemailer from 'nodemailer';
import { simpleParser } from 'mailparser';
import { FeedbackKeyring } from '../../shared/feedback/feedback-token.js';
import { Topics } from '../../shared/topics.js';
import { TopicReader } from '../helpers/topic-reader.js';
import { childCommands, childProcesses } from './launcher-process.js';

const ENTRY = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'services', 'postline.mjs');


let launcher: ChildProcess | undefined;
const dataDir = tempDir('postline-start-');
after(() => {
  if (launcher && launcher.exitCode === null) launcher.kill('SIGKILL');
  fs.rmSync(dataDir, { recursive: true, force: true });
});

test('postline start runs the pipeline end to end and Ctrl-C stops every process', { timeout: 120_000 }, async () => {
  const [api, brokerPort, smtp, outbox, analytics, inbound, tracker, submission, submissions] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('POSTLINE_')) delete env[k];
  // A key the user already has: npm start must keep it working next to its demo key.
  const userKey = generateApiKey();
  env.POSTLINE_INGEST_API_KEYS = JSON.stringify([{ tenant: 'acme', keyHash: hashApiKey(userKey) }]);
  const proc = spawn(process.execPath, [ENTRY, 'start', '--data-dir', dataDir, '--api-port', String(api), '--broker-port', String(brokerPort), '--smtp-port', String(smtp), '--outbox-port', String(outbox), '--analytics-port', String(analytics), '--inbound-port', String(inbound), '--tracker-port', String(tracker), '--submission-port', String(submission), '--submissions-port', String(submissions)], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  launcher = proc;
  let output = '';
  proc.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  await waitFor(() => output.includes('Postline is running'), 90_000, 'the launcher banner');
  const key = /API key\s+(\S+)/.exec(output)?.[1];
  assert.ok(key, 'the banner shows a demo API key');
  // Three processes below the launcher: the broker, analytics, and every other stage sharing one.
  assert.deepEqual(childCommands(proc.pid!), ['analytics', 'broker', 'stages renderer,dispatcher,scheduler,ingest,inbound,tracker,smtp-gateway,webhooks']);
  // Each runs the JavaScript npm start compiled from the sources (services/compiled-tree.mjs), not tsx.
  for (const c of childProcesses(proc.pid!)) assert.match(c.args, /node_modules\/\.cache\/postline\/[0-9a-f]{16}\/services\/cli\.js /, c.args);
  // The data files sit beside that code: the console's views and assets are served.
  const login = await fetch(`http://127.0.0.1:${api}/console/login`);
  assert.equal(login.status, 200);
  assert.match(await login.text(), /\/console\/assets\/console\.css/);
  assert.equal((await fetch(`http://127.0.0.1:${api}/console/assets/console.css`)).status, 200);
  assert.match(output, /curl -sS http:\/\/127\.0\.0\.1:\d+\/v1\/emails/);
  assert.match(output, /Your keys\s+still valid, next to the demo key: 1 from POSTLINE_INGEST_API_KEYS/);
  const byUser = await fetch(`http://127.0.0.1:${api}/v1/emails`, {
    method: 'POST',
    headers: { authorization: `Bearer ${userKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ from: 'ops@acme.test', to: ['someone@example.org'], subject: 'with my own key', text: 'still works' }),
  });
  assert.equal(byUser.status, 202, 'the user\'s own key still works under npm start');

  const res = await fetch(`http://127.0.0.1:${api}/v1/emails`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ from: 'Demo <demo@example.com>', to: ['you@example.org', 'them@example.net'], subject: 'Hello from Postline', text: 'It works.' }),
  });
  assert.equal(res.status, 202);
  const { id } = (await res.json()) as { id: string };

  type Listed = { envelope: { to: string[] }; messageId: string; id: string };
  const messages = await waitFor(async () => {
    const list = (await (await fetch(`http://127.0.0.1:${outbox}/v1/dev/outbox`)).json()) as { messages: Listed[] };
    const mine = list.messages.filter((m) => m.messageId.includes(id));
    return mine.length === 2 ? mine : undefined;
  }, 30_000, 'two deliveries (one per recipient domain) in the outbox');
  assert.deepEqual(messages.map((m) => m.envelope.to[0]).sort(), ['them@example.net', 'you@example.org']);
  const eml = await (await fetch(`http://127.0.0.1:${outbox}/v1/dev/outbox/${messages[0].id}.eml`)).text();
  assert.match(eml, /Subject: Hello from Postline/);

  // The timeline, through the send API's base URL (forwarded to analytics, same key).
  type View = { recipients: Array<{ address: string; state: string }>; timeline: Array<{ type: string }> };
  const view = await waitFor(async () => {
    const r = await fetch(`http://127.0.0.1:${api}/v1/messages/${id}`, { headers: { authorization: `Bearer ${key}` } });
    if (r.status !== 200) return undefined;
    const v = (await r.json()) as View;
    return v.recipients.length === 2 && v.recipients.every((x) => x.state === 'sent') ? v : undefined;
  }, 30_000, 'the timeline to show both recipients sent');
  assert.deepEqual([...new Set(view.timeline.map((t) => t.type))].sort(), ['accepted', 'rendered', 'sent']);
  const noKey = await fetch(`http://127.0.0.1:${api}/v1/messages/${id}`);
  assert.equal(noKey.status, 401);

  // Administration: the printed admin key creates a read-only key, which the read API (another
  // process, analytics) accepts as soon as it has read email.admin; it may not send.
  const adminKey = /Admin key\s+(\S+)/.exec(output)?.[1];
  assert.ok(adminKey, 'the banner shows an admin key');
  const created = await fetch(`http://127.0.0.1:${api}/v1/admin/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ tenant: 'demo', name: 'dashboards', scopes: ['read'] }),
  });
  assert.equal(created.status, 201);
  const readKey = ((await created.json()) as { key: string }).key;
  await waitFor(async () => (await fetch(`http://127.0.0.1:${api}/v1/messages/${id}`, { headers: { authorization: `Bearer ${readKey}` } })).status === 200, 5_000, 'the read API to accept the new key');
  const readerSends = await fetch(`http://127.0.0.1:${api}/v1/emails`, { method: 'POST', headers: { authorization: `Bearer ${readKey}`, 'content-type': 'application/json' }, body: '{}' });
  assert.equal(readerSends.status, 403);
  assert.equal((await fetch(`http://127.0.0.1:${api}/v1/admin/tenants`, { headers: { authorization: `Bearer ${key}` } })).status, 403, 'the demo key does not administer');

  // Feedback: a key generated into the data dir (never printed), and the inbound service on its port.
  const keys = JSON.parse(fs.readFileSync(path.join(dataDir, 'feedback-keys.json'), 'utf8')) as Array<{ id: number; secret: string }>;
  assert.ok(!output.includes(keys[0].secret), 'the feedback secret is never printed');
  assert.match(output, new RegExp(`Bounces\\s+smtp://127\\.0\\.0\\.1:${inbound}\\s+\\(DSNs to b-…@bounces\\.localhost`));
  const token = new FeedbackKeyring(keys).sign({ purpose: 'unsubscribe', messageId: id, tenant: 'demo', recipient: 'you@example.org', listId: 'demo-news' });
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: inbound, secure: false, ignoreTLS: true });
  const sent = await transport.sendMail({ envelope: { from: 'you@example.org', to: [`u-${token}@bounces.localhost`] }, raw: 'Subject: unsubscribe\r\n\r\nunsubscribe\r\n' });
  transport.close();
  assert.match(sent.response, /^250 /);
  const reader = await new TopicReader(`127.0.0.1:${brokerPort}`, [Topics.events]).start();
  try {
    const unsubscribed = await waitFor(() => reader.json<{ type: string; messageId: string; via?: string; listId?: string }>(Topics.events).find((e) => e.type === 'unsubscribed' && e.messageId === id), 30_000, 'the unsubscribed event');
    assert.equal(unsubscribed.via, 'mailto');
    assert.equal(unsubscribed.listId, 'demo-news');

    // Tracking: a message asking for it gets a signed link to the local tracker; following it answers 302 and a clicked event follows.
    assert.match(output, new RegExp(`Tracker\\s+http://127\\.0\\.0\\.1:${tracker}`));
    const tracked = await fetch(`http://127.0.0.1:${api}/v1/emails`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ from: 'demo@example.com', to: ['reader@example.org'], subject: 'tracked', html: '<p><a href="https://example.com/offer">offer</a></p>', track: { opens: true, clicks: true } }),
    });
    assert.equal(tracked.status, 202);
    const trackedId = ((await tracked.json()) as { id: string }).id;
    const delivered = await waitFor(async () => {
      const list = (await (await fetch(`http://127.0.0.1:${outbox}/v1/dev/outbox`)).json()) as { messages: Listed[] };
      return list.messages.find((m) => m.messageId.includes(trackedId));
    }, 30_000, 'the tracked message in the outbox');
    const html = String((await simpleParser(await (await fetch(`http://127.0.0.1:${outbox}/v1/dev/outbox/${delivered.id}.eml`)).text())).html);
    const link = /href="([^"]+)"/.exec(html)![1].replaceAll('&amp;', '&');
    assert.ok(link.startsWith(`http://127.0.0.1:${tracker}/c/`), link);
    const click = await fetch(link, { redirect: 'manual', headers: { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0' } });
    assert.equal(click.status, 302);
    assert.equal(click.headers.get('location'), 'https://example.com/offer');
    const clicked = await waitFor(() => reader.json<{ type: string; messageId: string; engagement?: { url?: string } }>(Topics.events).find((e) => e.type === 'clicked' && e.messageId === trackedId), 30_000, 'the clicked event');
    assert.equal(clicked.engagement?.url, 'https://example.com/offer');
  } finally {
    await reader.stop();
  }

  // The SMTP gateway: the demo key as password over STARTTLS (self-signed certificate), delivered to the outbox.
  assert.match(output, new RegExp(`SMTP submit\\s+smtp://127\\.0\\.0\\.1:${submission} \\(STARTTLS\\), smtps://127\\.0\\.0\\.1:${submissions}`));
  const gateway = nodemailer.createTransport({ host: '127.0.0.1', port: submission, secure: false, requireTLS: true, tls: { rejectUnauthorized: false }, auth: { user: 'apikey', pass: key } });
  const submitted = await gateway.sendMail({ from: 'demo@example.com', to: 'smtp@example.org', subject: 'Hello over SMTP', text: 'It works.' });
  gateway.close();
  const gatewayId = /queued as (\S+)/.exec(submitted.response)?.[1];
  assert.ok(gatewayId, submitted.response);
  await waitFor(async () => {
    const list = (await (await fetch(`http://127.0.0.1:${outbox}/v1/dev/outbox`)).json()) as { messages: Listed[] };
    return list.messages.some((m) => m.envelope.to.includes('smtp@example.org'));
  }, 30_000, 'the message submitted over SMTP in the outbox');

  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  proc.kill('SIGINT');
  assert.equal(await exited, 0);
  assert.match(output, /stopped/);
  // Every child was stopped too: their ports are free again.
  for (const port of [api, brokerPort, analytics, inbound, tracker, submission, submissions]) {
    await waitFor(async () => {
      const s = net.connect(port, '127.0.0.1');
      return await new Promise<boolean>((r) => {
        s.once('connect', () => (s.destroy(), r(false)));
        s.once('error', () => r(true));
      });
    }, 15_000, `port ${port} released`);
  }
});
