/**
 * The render stage's handler against an in-memory producer: what it produces for good
 * records, what it dead-letters for bad ones (every malformed shape a foreign producer can
 * send), and that Kafka failures make `handle` throw so the record is retried.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import type { IHeaders } from 'kafkajs';
import { simpleParser } from 'mailparser';
import { Renderer } from './renderer.js';
import { EventPublisher } from '../../shared/events.js';
import { TemplateRepository } from '../../shared/templates/template-repository.js';
import type { DirectoryTemplates } from '../../shared/templates/template-directory.js';
import type { StageRecord } from '../../shared/kafka/stage-consumer.js';
import type { BatchingProducer } from '../../shared/kafka/batching-producer.js';
import { DeadLetterContract, type DeadLetter } from '../../shared/contracts/dead-letter.js';
import { EmailEventContract, type EmailEvent } from '../../shared/contracts/email-event.js';
import { EmailReadyForDispatchContract } from '../../shared/contracts/email-ready-for-dispatch.js';
import { emailRequest } from '../../test/renderer/email-requests.js';

interface Sent {
  topic: string;
  key: string | null;
  value: Buffer | null;
  headers?: IHeaders;
}

class RecordingProducer {
  sent: Sent[] = [];
  failWith?: Error;
  async send(topic: string, message: { key?: string | Buffer | null; value: Buffer | string | null; headers?: IHeaders }) {
    if (this.failWith) throw this.failWith;
    const value = message.value === null ? null : Buffer.from(message.value);
    this.sent.push({ topic, key: message.key === undefined || message.key === null ? null : String(message.key), value, headers: message.headers });
    return { topic, partition: 0, offset: '0' };
  }
  on(topic: string) {
    return this.sent.filter((s) => s.topic === topic);
  }
}

const directory: DirectoryTemplates = {
  templates: new Map([
    [
      'welcome',
      {
        template: { schemaVersion: 1, name: 'welcome', subject: 'Welcome {{name}}', html: '<p>Hi {{name}}</p>{{> footer}}', text: 'Hi {{name}}', updatedAt: '2026-01-01T00:00:00.000Z', version: 1 },
        revision: 'r1',
      },
    ],
  ]),
  partials: { footer: '<small>{{default company "Shop"}}</small>' },
  partialsRevision: 'p1',
};

function setup(limits = { maxRecordBytes: 64 * 1024, maxMessageBytes: 1024 * 1024 }) {
  const producer = new RecordingProducer();
  const templates = new TemplateRepository({ directory });
  const renderer = new Renderer({
    templates,
    producer,
    events: new EventPublisher(producer as unknown as BatchingProducer, 'renderer'),
    logger: pino({ level: 'silent' }),
    limits,
  });
  const failures: string[] = [];
  renderer.on('failed', (code: string) => failures.push(code));
  return { producer, renderer, templates, failures };
}

let offset = 0;
function record(value: Buffer | string | null, headers?: IHeaders): StageRecord {
  return {
    topic: 'email.requested',
    partition: 0,
    message: { key: Buffer.from('k'), value: value === null ? null : Buffer.from(value), offset: String(offset++), timestamp: '0', attributes: 0, headers, size: 0 } as never,
  };
}

const events = (p: RecordingProducer): EmailEvent[] => p.on('email.events').map((s) => EmailEventContract.decode(s.value));
const deadLetters = (p: RecordingProducer): DeadLetter[] => p.on('email.dead').map((s) => DeadLetterContract.decode(s.value));

describe('Renderer.handle: a valid request', () => {
  test('two domains → two dispatch records with the same MIME, then a rendered event', async () => {
    const { producer, renderer } = setup();
    const req = emailRequest({
      to: [{ email: 'a@gmail.com' }, { email: 'c@example.org' }],
      cc: [{ email: 'b@gmail.com' }],
      bcc: [{ email: 'hidden@example.org' }],
      tags: ['t1'],
    });
    await renderer.handle(record(JSON.stringify(req), { traceparent: '00-1-2-01', other: 'x' }));
    const dispatched = producer.on('email.dispatch.transactional');
    assert.deepEqual(
      dispatched.map((d) => d.key),
      ['gmail.com', 'example.org'],
    );
    const [gmail, example] = dispatched.map((d) => EmailReadyForDispatchContract.decode(d.value));
    assert.deepEqual(gmail.envelope, { from: 'noreply@shop.example', to: ['a@gmail.com', 'b@gmail.com'] });
    assert.deepEqual(example.envelope, { from: 'noreply@shop.example', to: ['c@example.org', 'hidden@example.org'] });
    assert.equal(gmail.raw, example.raw);
    assert.equal(gmail.attempt, 1);
    const mail = await simpleParser(gmail.raw);
    assert.equal(mail.subject, 'Your order');
    assert.equal(mail.messageId, `<${req.messageId}@shop.example>`);
    assert.equal(mail.bcc, undefined);
    assert.deepEqual(dispatched[0].headers, { traceparent: '00-1-2-01' }, 'trace context travels, nothing else');
    const [rendered] = events(producer);
    assert.equal(rendered.type, 'rendered');
    assert.equal(rendered.messageId, req.messageId);
    assert.equal(rendered.tenant, 'acme');
    assert.equal(rendered.priority, 'transactional');
    assert.equal(rendered.domainCount, 2);
    assert.deepEqual(rendered.recipients, ['a@gmail.com', 'b@gmail.com', 'c@example.org', 'hidden@example.org']);
    assert.deepEqual(rendered.tags, ['t1']);
    assert.equal(producer.on('email.dead').length, 0);
  });

  test('a template with a shared partial and helpers renders, priority picks the topic', async () => {
    const { producer, renderer } = setup();
    const req = emailRequest({ priority: 'bulk', subject: undefined, html: undefined, text: undefined, template: { name: 'welcome', data: { name: 'Zoë <script>' } } });
    await renderer.handle(record(JSON.stringify(req)));
    const [d] = producer.on('email.dispatch.bulk').map((s) => EmailReadyForDispatchContract.decode(s.value));
    const mail = await simpleParser(d.raw);
    assert.equal(mail.subject, 'Welcome Zoë <script>');
    assert.equal((mail.html as string).trim(), '<p>Hi Zoë &lt;script&gt;</p><small>Shop</small>');
    assert.equal(mail.text?.trim(), 'Hi Zoë <script>');
  });
});

interface BadCase {
  name: string;
  value: Buffer | string | null;
  code: string;
  reason: RegExp;
  /** A failed event is published only when the message id and tenant could be read. */
  failedEvent: boolean;
}

const good = emailRequest({ messageId: 'm-bad', tenant: 'acme' });
const json = (o: unknown) => JSON.stringify(o);
const badCases: BadCase[] = [
  { name: 'not JSON', value: 'hello, kafka', code: 'VALIDATION_FAILED', reason: /not JSON/, failedEvent: false },
  { name: 'a tombstone (no value)', value: null, code: 'VALIDATION_FAILED', reason: /no value/, failedEvent: false },
  { name: 'a JSON array', value: '[1,2]', code: 'VALIDATION_FAILED', reason: /object/i, failedEvent: false },
  { name: 'wrong types', value: json({ ...good, priority: 'urgent', to: 'alice@example.org' }), code: 'VALIDATION_FAILED', reason: /priority.*to|to.*priority/s, failedEvent: true },
  { name: 'a missing field', value: json({ ...good, from: undefined }), code: 'VALIDATION_FAILED', reason: /from/, failedEvent: true },
  { name: 'an unknown schema version', value: json({ ...good, schemaVersion: 99 }), code: 'VALIDATION_FAILED', reason: /schemaVersion/, failedEvent: true },
  { name: 'CR/LF in a header value', value: json({ ...good, headers: { 'X-A': 'v\r\nBcc: x@evil.example' } }), code: 'VALIDATION_FAILED', reason: /headers\.X-A/, failedEvent: true },
  { name: 'CR/LF in the subject', value: json({ ...good, subject: 'Hi\nBcc: x@evil.example' }), code: 'VALIDATION_FAILED', reason: /subject/, failedEvent: true },
  { name: 'LF in a display name', value: json({ ...good, to: [{ email: 'a@example.org', name: 'A\nB' }] }), code: 'VALIDATION_FAILED', reason: /to\.0\.name/, failedEvent: true },
  { name: 'an invalid address', value: json({ ...good, to: [{ email: 'alice at example.org' }] }), code: 'VALIDATION_FAILED', reason: /to\.0\.email/, failedEvent: true },
  { name: 'a reserved custom header', value: json({ ...good, headers: { 'Content-Type': 'text/html' } }), code: 'VALIDATION_FAILED', reason: /headers\.Content-Type/, failedEvent: true },
  { name: 'oversized', value: json({ ...good, html: 'x'.repeat(70 * 1024) }), code: 'RECORD_TOO_LARGE', reason: /at most 65536/, failedEvent: true },
  { name: 'an unknown template', value: json({ ...good, html: undefined, text: undefined, template: { name: 'nope' } }), code: 'TEMPLATE_NOT_FOUND', reason: /"nope"/, failedEvent: true },
  {
    name: 'a variable the template needs is missing',
    value: json({ ...good, html: undefined, text: undefined, template: { name: 'welcome', data: {} } }),
    code: 'TEMPLATE_RENDER_FAILED',
    reason: /template "welcome" subject: "name" not defined/,
    failedEvent: true,
  },
  { name: 'garbage ids are not trusted', value: json({ messageId: 'a\nb', tenant: 'x'.repeat(500) }), code: 'VALIDATION_FAILED', reason: /./, failedEvent: false },
  { name: 'binary', value: Buffer.from([0xff, 0xfe, 0x00, 0x80]), code: 'VALIDATION_FAILED', reason: /not JSON/, failedEvent: false },
];

describe('Renderer.handle: a record it cannot render is dead-lettered and handle resolves', () => {
  for (const c of badCases) {
    test(c.name, async () => {
      const { producer, renderer, failures } = setup();
      await renderer.handle(record(c.value));
      assert.equal(producer.on('email.dispatch.transactional').length, 0, 'nothing dispatched');
      const [dead, ...more] = deadLetters(producer);
      assert.equal(more.length, 0);
      assert.equal(dead.code, c.code);
      assert.match(dead.reason, c.reason);
      assert.equal(dead.stage, 'renderer');
      assert.equal(dead.source.topic, 'email.requested');
      const failed = events(producer).filter((e) => e.type === 'failed');
      assert.equal(failed.length, c.failedEvent ? 1 : 0);
      if (c.failedEvent) {
        assert.equal(failed[0].messageId, 'm-bad');
        assert.equal(failed[0].tenant, 'acme');
        assert.match(failed[0].reason!, new RegExp(`^${c.code}: `));
      }
      assert.equal(events(producer).filter((e) => e.type === 'rendered').length, 0);
      assert.deepEqual(failures, [c.code]);
    });
  }

  test('the dead letter keeps the record verbatim (text, or base64 for binary)', async () => {
    const { producer, renderer } = setup();
    await renderer.handle(record('not json'));
    await renderer.handle(record(Buffer.from([0xff, 0xfe])));
    const [text, binary] = deadLetters(producer);
    assert.deepEqual([text.source.value, text.source.valueEncoding], ['not json', 'utf8']);
    assert.deepEqual([binary.source.value, binary.source.valueEncoding], ['//4=', 'base64']);
  });

  test('an oversized record is kept only in part', async () => {
    const { producer, renderer } = setup();
    await renderer.handle(record(json({ ...good, html: 'x'.repeat(200 * 1024) })));
    assert.equal(deadLetters(producer)[0].source.value!.length, 64 * 1024);
  });

  test('a message rendered larger than maxMessageBytes', async () => {
    const { producer, renderer } = setup({ maxRecordBytes: 1024 * 1024, maxMessageBytes: 2048 });
    await renderer.handle(record(json({ ...good, html: 'y'.repeat(4096) })));
    assert.equal(deadLetters(producer)[0].code, 'MESSAGE_TOO_LARGE');
  });
});

describe('Renderer.handle: Kafka failures are retried, not dead-lettered', () => {
  test('a failed produce rejects handle', async () => {
    const { producer, renderer } = setup();
    producer.failWith = new Error('broker unavailable');
    await assert.rejects(renderer.handle(record(json(emailRequest()))), /broker unavailable/);
  });

  test('a failed dead-letter produce rejects handle too', async () => {
    const { producer, renderer } = setup();
    producer.failWith = new Error('broker unavailable');
    await assert.rejects(renderer.handle(record('not json')), /broker unavailable/);
  });

  test('a template lookup failing on Kafka rejects handle', async () => {
    const { producer, renderer, templates } = setup();
    templates.compiled = async () => {
      throw new Error('catch-up failed: connection refused');
    };
    await assert.rejects(renderer.handle(record(json(emailRequest({ html: undefined, text: undefined, template: { name: 'x' } })))), /connection refused/);
    assert.equal(producer.sent.length, 0);
  });
});
