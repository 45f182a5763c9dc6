/**
 * The render stage through the real (embedded) broker: EmailRequested records in, dispatch
 * records, events and dead letters out, templates from the directory and from
 * `email.templates`.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { simpleParser, type AddressObject } from 'mailparser';
import { startTestBroker, tempDir, uniqueName, waitFor, type TestBroker } from '../helpers/broker.js';
import { TopicReader } from '../helpers/topic-reader.js';
import { PRIORITIES, loadPostlineConfig, type PostlineConfig } from '../../shared/config.js';
import { Topics } from '../../shared/topics.js';
import { BatchingProducer } from '../../shared/kafka/batching-producer.js';
import { EmailRequestedContract, type EmailRequested } from '../../shared/contracts/email-requested.js';
import type { EmailReadyForDispatch } from '../../shared/contracts/email-ready-for-dispatch.js';
import type { EmailEvent } from '../../shared/contracts/email-event.js';
import type { DeadLetter } from '../../shared/contracts/dead-letter.js';
import { openTemplateRepository, type TemplateRepository } from '../../shared/templates/template-repository.js';
import { startRenderer, type RunningRenderer } from '../../services/renderer/main.js';
import { emailRequest } from './email-requests.js';

const silent = pino({ level: 'silent' });
const DISPATCH = [Topics.dispatch('critical'), Topics.dispatch('transactional'), Topics.dispatch('bulk')];

let broker: TestBroker;
let renderer: RunningRenderer;
let reader: TopicReader;
let producer: Producer;
let ingestSide: { repository: TemplateRepository; stop(): Promise<void>; producer: Producer };
let templatesDir: string;
let config: PostlineConfig;
const groupId = uniqueName('renderer');

function writeTree(dir: string, files: Record<string, string>): void {
  for (const [rel, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), content);
  }
}

async function produceRequest(req: EmailRequested): Promise<void> {
  await producer.send({ topic: Topics.requested, acks: -1, messages: [{ key: req.messageId, value: EmailRequestedContract.encode(req) }] });
}

const dispatched = (messageId: string): Array<EmailReadyForDispatch & { $topic: string; $key: string }> =>
  reader.records
    .filter((r) => DISPATCH.includes(r.topic) && r.message.value)
    .map((r) => ({ ...(JSON.parse(r.message.value!.toString()) as EmailReadyForDispatch), $topic: r.topic, $key: r.message.key!.toString() }))
    .filter((d) => d.messageId === messageId);
const eventsOf = (messageId: string): EmailEvent[] => reader.json<EmailEvent>(Topics.events).filter((e) => e.messageId === messageId);
const deadOf = (pred: (d: DeadLetter) => boolean): DeadLetter[] => reader.json<DeadLetter>(Topics.dead).filter(pred);
/** Waits until `get` returns `n` items (and not more). */
async function waitForN<T>(get: () => T[], n: number, what: string): Promise<T[]> {
  await waitFor(() => get().length >= n, 20_000, what);
  const got = get();
  assert.equal(got.length, n, what);
  return got;
}
const addresses = (a: AddressObject | AddressObject[] | undefined) => (Array.isArray(a) ? a : a ? [a] : []).flatMap((x) => x.value.map((v) => v.address));

before(async () => {
  broker = await startTestBroker();
  templatesDir = tempDir('postline-templates-');
  writeTree(templatesDir, {
    'partials/footer.hbs': '<footer>{{default company "Postline Shop"}}</footer>',
    'welcome/subject.hbs': 'Welcome, {{name}}!\n',
    'welcome/html.hbs': '<h1>{{> greeting}}</h1>\n{{> footer}}',
    'welcome/text.hbs': '{{> greeting}}!\n-- {{default company "Postline Shop"}}',
    'welcome/partials/greeting.hbs': 'Hello {{name}}',
  });
  config = loadPostlineConfig({
    env: {},
    overrides: {
      'log.level': 'silent',
      'kafka.brokers': [broker.bootstrap],
      'kafka.partitions': 2,
      'ops.host': '127.0.0.1',
      'ops.port': 0,
      'renderer.templatesDir': templatesDir,
      'renderer.templatesReloadMs': 0,
      'renderer.concurrency': 16,
    },
  });
  renderer = await startRenderer(config, { logger: silent, groupId });
  const kafka = new Kafka({ brokers: [broker.bootstrap], clientId: 'renderer-test', logLevel: logLevel.NOTHING });
  producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  // The ingest API's side of email.templates: its own table and producer.
  const ingestProducer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await ingestProducer.connect();
  const opened = await openTemplateRepository({ kafka, producer: new BatchingProducer(ingestProducer), logger: silent });
  ingestSide = { ...opened, producer: ingestProducer };
  reader = await new TopicReader(broker.bootstrap, [...DISPATCH, Topics.events, Topics.dead]).start();
});

after(async () => {
  await reader?.stop();
  await ingestSide?.stop();
  await ingestSide?.producer.disconnect();
  await producer?.disconnect();
  await renderer?.close();
  await broker?.destroy();
  fs.rmSync(templatesDir, { recursive: true, force: true });
});

describe('renderer with the real broker', () => {
  test('a message to two domains becomes two dispatch records with the exact MIME and their envelopes', async () => {
    const req = emailRequest({
      to: [{ email: 'ann@gmail.com', name: 'Ann' }, { email: 'carl@example.org' }],
      cc: [{ email: 'BEN@Gmail.com' }],
      bcc: [{ email: 'audit@example.org' }],
      subject: 'Order #42 – shipped',
      html: '<p>Your order <b>#42</b> has shipped.</p>',
      text: 'Your order #42 has shipped.',
      headers: { 'X-Order': '42' },
      attachments: [{ filename: 'label.txt', content: Buffer.from('tracking: XY123').toString('base64') }],
      tags: ['shipping'],
    });
    await produceRequest(req);
    const records = await waitForN(() => dispatched(req.messageId), 2, 'two dispatch records');
    const byDomain = new Map(records.map((r) => [r.domain, r]));
    assert.deepEqual([...byDomain.keys()].sort(), ['example.org', 'gmail.com']);
    for (const r of records) {
      assert.equal(r.$topic, 'email.dispatch.transactional');
      assert.equal(r.$key, r.domain);
      assert.equal(r.attempt, 1);
      assert.equal(r.tenant, 'acme');
      assert.equal(r.envelope.from, 'noreply@shop.example');
    }
    assert.deepEqual(byDomain.get('gmail.com')!.envelope.to, ['ann@gmail.com', 'BEN@gmail.com']);
    assert.deepEqual(byDomain.get('example.org')!.envelope.to, ['carl@example.org', 'audit@example.org']);
    assert.equal(byDomain.get('gmail.com')!.raw, byDomain.get('example.org')!.raw, 'rendered once: the same bytes for every domain');

    const mail = await simpleParser(records[0].raw);
    assert.equal(mail.subject, req.subject);
    assert.equal(mail.messageId, `<${req.messageId}@shop.example>`);
    assert.equal(mail.date?.toISOString(), req.acceptedAt);
    assert.deepEqual(addresses(mail.from), ['noreply@shop.example']);
    assert.deepEqual(addresses(mail.to), ['ann@gmail.com', 'carl@example.org']);
    assert.match(records[0].raw, /^Cc: BEN@gmail\.com\r$/m);
    assert.equal(mail.bcc, undefined);
    assert.doesNotMatch(records[0].raw, /audit@example\.org/);
    assert.equal(mail.headers.get('x-order'), '42');
    assert.equal((mail.html as string).trim(), req.html);
    assert.equal(mail.text?.trim(), req.text);
    assert.deepEqual(
      mail.attachments.map((a) => [a.filename, a.content.toString()]),
      [['label.txt', 'tracking: XY123']],
    );

    const rendered = await waitFor(() => eventsOf(req.messageId).find((e) => e.type === 'rendered'), 10_000, 'rendered event');
    assert.equal(rendered.domainCount, 2);
    assert.equal(rendered.stage, 'renderer');
    assert.deepEqual([...rendered.recipients!].sort(), ['BEN@gmail.com', 'ann@gmail.com', 'audit@example.org', 'carl@example.org']);
  });

  test('priority picks the dispatch topic', async () => {
    const critical = emailRequest({ priority: 'critical' });
    const bulk = emailRequest({ priority: 'bulk' });
    await produceRequest(critical);
    await produceRequest(bulk);
    const [c] = await waitForN(() => dispatched(critical.messageId), 1, 'critical record');
    const [b] = await waitForN(() => dispatched(bulk.messageId), 1, 'bulk record');
    assert.equal(c.$topic, 'email.dispatch.critical');
    assert.equal(b.$topic, 'email.dispatch.bulk');
  });

  test('each priority’s own request lane renders that priority; a record on the wrong lane is dead-lettered PRIORITY_MISMATCH and the lane goes on', async () => {
    const onLane = PRIORITIES.map((p) => emailRequest({ priority: p }));
    for (const [i, p] of PRIORITIES.entries()) {
      await producer.send({ topic: Topics.requestedFor(p), acks: -1, messages: [{ key: onLane[i].messageId, value: EmailRequestedContract.encode(onLane[i]) }] });
    }
    for (const [i, p] of PRIORITIES.entries()) {
      const [d] = await waitForN(() => dispatched(onLane[i].messageId), 1, `${p} record from its lane`);
      assert.equal(d.$topic, Topics.dispatch(p));
    }
    // A bulk message on the critical lane would jump the queue: parked, with the reason.
    const jumper = emailRequest({ priority: 'bulk' });
    const next = emailRequest({ priority: 'critical' });
    await producer.send({
      topic: Topics.requestedFor('critical'),
      acks: -1,
      messages: [jumper, next].map((r) => ({ key: 'same', value: EmailRequestedContract.encode(r) })),
    });
    const [dead] = await waitForN(() => deadOf((d) => d.messageId === jumper.messageId), 1, 'dead letter');
    assert.equal(dead.code, 'PRIORITY_MISMATCH');
    assert.equal(dead.source.topic, Topics.requestedFor('critical'));
    const failed = await waitFor(() => eventsOf(jumper.messageId).find((e) => e.type === 'failed'), 10_000, 'failed event');
    assert.match(failed.reason!, /^PRIORITY_MISMATCH: /);
    await waitForN(() => dispatched(next.messageId), 1, 'the next critical record');
    assert.equal(dispatched(jumper.messageId).length, 0);
  });

  test('a template with partials renders from the directory, and a tenant’s own template on email.templates overrides it', async () => {
    const fromDirectory = emailRequest({ tenant: 'globex', subject: undefined, html: undefined, text: undefined, template: { name: 'welcome', data: { name: 'Gus & Co' } } });
    await produceRequest(fromDirectory);
    const [d] = await waitForN(() => dispatched(fromDirectory.messageId), 1, 'directory-template record');
    const dirMail = await simpleParser(d.raw);
    assert.equal(dirMail.subject, 'Welcome, Gus & Co!');
    assert.equal((dirMail.html as string).trim(), '<h1>Hello Gus &amp; Co</h1>\n<footer>Postline Shop</footer>');
    assert.equal(dirMail.text?.trim(), 'Hello Gus & Co!\n-- Postline Shop');

    // The ingest API stores acme's own "welcome"; the very next email uses it.
    const stored = await ingestSide.repository.put('acme', 'welcome', {
      subject: 'ACME welcomes {{uppercase name}}',
      html: '<div>{{> badge}} {{name}}</div>{{> footer}}',
      text: '{{> badge}} {{name}}',
      partials: { badge: '[ACME]' },
    });
    assert.equal(stored.version, 1);
    const fromTopic = emailRequest({ tenant: 'acme', subject: undefined, html: undefined, text: undefined, template: { name: 'welcome', data: { name: 'Ann', company: 'ACME Inc' } } });
    await produceRequest(fromTopic);
    const [t] = await waitForN(() => dispatched(fromTopic.messageId), 1, 'tenant-template record');
    const tenantMail = await simpleParser(t.raw);
    assert.equal(tenantMail.subject, 'ACME welcomes ANN');
    assert.equal((tenantMail.html as string).trim(), '<div>[ACME] Ann</div><footer>ACME Inc</footer>');
    assert.equal(tenantMail.text?.trim(), '[ACME] Ann');

    // Another tenant still gets the directory template.
    const other = emailRequest({ tenant: 'initech', subject: undefined, html: undefined, text: undefined, template: { name: 'welcome', data: { name: 'Peter' } } });
    await produceRequest(other);
    const [o] = await waitForN(() => dispatched(other.messageId), 1, 'other tenant record');
    assert.equal((await simpleParser(o.raw)).subject, 'Welcome, Peter!');
  });

  test('a directory change is picked up on reload', async () => {
    fs.writeFileSync(path.join(templatesDir, 'welcome', 'subject.hbs'), 'Hi again, {{name}}');
    assert.deepEqual(await renderer.reloadTemplates(), []);
    const req = emailRequest({ tenant: 'globex', subject: undefined, html: undefined, text: undefined, template: { name: 'welcome', data: { name: 'Gus' } } });
    await produceRequest(req);
    const [d] = await waitForN(() => dispatched(req.messageId), 1, 'record after reload');
    assert.equal((await simpleParser(d.raw)).subject, 'Hi again, Gus');
  });

  test('a malformed record produced straight to email.requested lands in email.dead and the stage goes on', async () => {
    const marker = uniqueName('garbage');
    const next = emailRequest();
    // Same key → same partition: the valid record is behind the bad one.
    await producer.send({
      topic: Topics.requested,
      acks: -1,
      messages: [
        { key: 'same', value: `{"not": "an email", "marker": "${marker}"` },
        { key: 'same', value: JSON.stringify({ ...emailRequest({ messageId: `${marker}-typed` }), priority: 'asap', to: [{ email: 'x@example.org\r\nBcc: y@evil.example' }] }) },
        { key: 'same', value: EmailRequestedContract.encode(next) },
      ],
    });
    const [garbage] = await waitForN(() => deadOf((d) => d.source.value?.includes(marker) === true && !d.messageId), 1, 'dead letter');
    assert.equal(garbage.code, 'VALIDATION_FAILED');
    assert.match(garbage.reason, /not JSON/);
    assert.equal(garbage.stage, 'renderer');
    assert.equal(garbage.source.topic, Topics.requested);
    assert.equal(garbage.source.key, 'same');
    const [typed] = await waitForN(() => deadOf((d) => d.messageId === `${marker}-typed`), 1, 'typed dead letter');
    assert.match(typed.reason, /priority/);
    assert.match(typed.reason, /to\.0\.email/);
    const failed = await waitFor(() => eventsOf(`${marker}-typed`).find((e) => e.type === 'failed'), 10_000, 'failed event');
    assert.match(failed.reason!, /^VALIDATION_FAILED: /);
    await waitFor(() => dispatched(next.messageId).length === 1, 20_000, 'the next record is still dispatched');
  });

  test('unknown template → failed event and dead letter, no dispatch record', async () => {
    const req = emailRequest({ subject: undefined, html: undefined, text: undefined, template: { name: 'does-not-exist', data: {} } });
    const after = emailRequest();
    await produceRequest(req);
    await produceRequest(after);
    const failed = await waitFor(() => eventsOf(req.messageId).find((e) => e.type === 'failed'), 20_000, 'failed event');
    assert.match(failed.reason!, /^TEMPLATE_NOT_FOUND: .*does-not-exist/);
    const [dead] = await waitForN(() => deadOf((d) => d.messageId === req.messageId), 1, 'dead letter');
    assert.equal(dead.code, 'TEMPLATE_NOT_FOUND');
    assert.equal(dead.tenant, 'acme');
    assert.equal(EmailRequestedContract.decode(dead.source.value).messageId, req.messageId, 'the original record is kept');
    // A later record was rendered, so this one was finished with, not retried.
    await waitFor(() => dispatched(after.messageId).length === 1, 20_000, 'later record dispatched');
    assert.equal(dispatched(req.messageId).length, 0);
    assert.equal(eventsOf(req.messageId).filter((e) => e.type === 'rendered').length, 0);
  });

  test('metrics and readiness on the ops server', async () => {
    const ready = await fetch(`${renderer.opsAddress}/readyz`);
    assert.equal(ready.status, 200);
    const metrics = await (await fetch(`${renderer.opsAddress}/metrics`)).text();
    assert.match(metrics, /postline_renderer_rendered_total\{[^}]*priority="transactional"[^}]*\} [1-9]/);
    assert.match(metrics, /postline_renderer_failures_total\{[^}]*code="TEMPLATE_NOT_FOUND"[^}]*\} 1/);
    assert.match(metrics, /postline_renderer_render_seconds_count\{[^}]*\} [1-9]/);
  });

  test('a restarted renderer resumes after its last commit: nothing is rendered twice', async () => {
    assert.equal(await renderer.close(), true, 'clean shutdown');
    renderer = await startRenderer(config, { logger: silent, groupId });
    const req = emailRequest();
    await produceRequest(req);
    await waitFor(() => dispatched(req.messageId).length === 1, 20_000, 'record after restart');
    const seen = new Map<string, number>();
    for (const r of reader.records.filter((x) => DISPATCH.includes(x.topic))) {
      const d = JSON.parse(r.message.value!.toString()) as EmailReadyForDispatch;
      const k = `${d.messageId} ${d.domain}`;
      seen.set(k, (seen.get(k) ?? 0) + 1);
    }
    assert.ok(seen.size >= 10);
    assert.deepEqual([...seen].filter(([, n]) => n > 1), []);
  });
});
