/**
 * DKIM and sender domains in the render stage, against an in-memory producer: the dispatch
 * record carries a signature an independent verifier (mailauth's `dkimVerify`) accepts, the
 * `rendered` event names the signing domain and selector, a From domain without a key is sent
 * unsigned or refused by policy, and a record from a foreign producer with a From domain its
 * tenant does not own is dead-lettered SENDER_DOMAIN with a `failed` event.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { generateKeyPairSync } from 'node:crypto';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { Renderer } from './renderer.js';
import type { DkimPolicy } from './message-signing.js';
import { EventPublisher } from '../../shared/events.js';
import { TemplateRepository } from '../../shared/templates/template-repository.js';
import type { StageRecord } from '../../shared/kafka/stage-consumer.js';
import type { BatchingProducer } from '../../shared/kafka/batching-producer.js';
import { DeadLetterContract } from '../../shared/contracts/dead-letter.js';
import { EmailEventContract } from '../../shared/contracts/email-event.js';
import { EmailReadyForDispatchContract } from '../../shared/contracts/email-ready-for-dispatch.js';
import { configuredSenderDomains } from '../../shared/sender-domains.js';
import { keyFor, type DkimKey, type KeyTable } from '../../shared/dkim/dkim-keys.js';
import { dkimRecordValue } from '../../shared/dkim/dkim-record.js';
import { emailRequest } from '../../test/renderer/email-requests.js';

class RecordingProducer {
  sent: Array<{ topic: string; value: Buffer }> = [];
  async send(topic: string, message: { value: Buffer | string | null }) {
    this.sent.push({ topic, value: Buffer.from(message.value ?? '') });
    return { topic, partition: 0, offset: '0' };
  }
  on(topic: string) {
    return this.sent.filter((s) => s.topic === topic).map((s) => s.value);
  }
}

function tableOf(...keys: DkimKey[]): KeyTable {
  return { domains: new Map(keys.map((k) => [k.domain, { domain: k.domain, keys: [k], active: k, activeBy: 'last-selector' as const }])) };
}

function keyOf(domain: string, selector: string, type: 'rsa' | 'ed25519'): DkimKey {
  const { privateKey } = type === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ed25519');
  return { domain, selector, type, privateKey, file: `/keys/${domain}/${selector}.pem`, digest: '' };
}

function setup(opts: { dkim?: DkimPolicy; senderDomains?: Record<string, string[]> } = {}) {
  const producer = new RecordingProducer();
  const renderer = new Renderer({
    templates: new TemplateRepository({}),
    producer,
    events: new EventPublisher(producer as unknown as BatchingProducer, 'renderer'),
    logger: pino({ level: 'silent' }),
    limits: { maxRecordBytes: 64 * 1024, maxMessageBytes: 1024 * 1024 },
    dkim: opts.dkim,
    senderDomains: opts.senderDomains ? configuredSenderDomains(opts.senderDomains) : undefined,
  });
  const seen = { failed: [] as string[], signed: [] as unknown[], unsigned: [] as string[] };
  renderer.on('failed', (c: string) => seen.failed.push(c));
  renderer.on('signed', (s: unknown) => seen.signed.push(s));
  renderer.on('unsigned', (r: string) => seen.unsigned.push(r));
  return { producer, renderer, seen };
}

let offset = 0;
const record = (value: unknown): StageRecord => ({
  topic: 'email.requested',
  partition: 0,
  message: { key: Buffer.from('k'), value: Buffer.from(JSON.stringify(value)), offset: String(offset++), timestamp: '0', attributes: 0, size: 0 } as never,
});

async function verified(raw: string, key: DkimKey) {
  const resolver = async (name: string, rr: string): Promise<string[][]> => {
    if (rr === 'TXT' && name === `${key.selector}._domainkey.${key.domain}`) return [[dkimRecordValue(key.privateKey, key.type)]];
    throw Object.assign(new Error(`no ${rr} for ${name}`), { code: 'ENOTFOUND' });
  };
  return (await dkimVerify(Buffer.from(raw), { resolver })).results;
}

describe('renderer: DKIM', () => {
  for (const type of ['rsa', 'ed25519'] as const) {
    test(`${type}: every dispatch record carries the same verifiable signature by the From domain's parent; the rendered event names it`, async () => {
      const key = keyOf('shop.example', 'mail2026', type);
      const { producer, renderer, seen } = setup({ dkim: { keys: { keyFor: (d) => keyFor(tableOf(key), d) }, missingKey: 'unsigned' } });
      const req = emailRequest({
        from: { email: 'news@mail.shop.example', name: 'Shop' },
        to: [{ email: 'a@gmail.com' }, { email: 'b@example.org' }],
        headers: { 'List-Unsubscribe': '<https://shop.example/u/1>', 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' },
      });
      await renderer.handle(record(req));
      const dispatched = producer.on('email.dispatch.transactional').map((v) => EmailReadyForDispatchContract.decode(v));
      assert.equal(dispatched.length, 2);
      assert.equal(dispatched[0].raw, dispatched[1].raw);
      const results = await verified(dispatched[0].raw, key);
      assert.equal(results[0]?.status.result, 'pass', JSON.stringify(results));
      assert.equal(results[0].signingDomain, 'shop.example');
      assert.match(dispatched[0].raw.split('\r\n\r\n')[0].replace(/\r\n\s+/g, ' '), /h=[^;]*List-Unsubscribe-Post/i);
      const [rendered] = producer.on('email.events').map((v) => EmailEventContract.decode(v));
      assert.deepEqual(rendered.dkim, { domain: 'shop.example', selector: 'mail2026' });
      assert.deepEqual(seen.signed, [{ domain: 'shop.example', algorithm: type === 'rsa' ? 'rsa-sha256' : 'ed25519-sha256' }]);
      // Rendering the same record again (a redelivery after a crash) gives the same bytes.
      await renderer.handle(record(req));
      assert.equal(EmailReadyForDispatchContract.decode(producer.on('email.dispatch.transactional')[2]).raw, dispatched[0].raw);
    });
  }

  test('a From domain without a key: sent unsigned and counted (missingKey unsigned)', async () => {
    const key = keyOf('shop.example', 's1', 'ed25519');
    const { producer, renderer, seen } = setup({ dkim: { keys: { keyFor: (d) => keyFor(tableOf(key), d) }, missingKey: 'unsigned' } });
    await renderer.handle(record(emailRequest({ from: { email: 'x@other.example' } })));
    const [d] = producer.on('email.dispatch.transactional').map((v) => EmailReadyForDispatchContract.decode(v));
    assert.doesNotMatch(d.raw, /DKIM-Signature/i);
    assert.equal(producer.on('email.events').map((v) => EmailEventContract.decode(v))[0].dkim, undefined);
    assert.deepEqual(seen.unsigned, ['missing-key']);
  });

  test('a From domain without a key: dead-lettered DKIM_KEY_MISSING with a failed event (missingKey refuse)', async () => {
    const { producer, renderer, seen } = setup({ dkim: { keys: { keyFor: () => undefined }, missingKey: 'refuse' } });
    const req = emailRequest({ from: { email: 'x@other.example' } });
    await renderer.handle(record(req));
    assert.equal(producer.on('email.dispatch.transactional').length, 0);
    const [dead] = producer.on('email.dead').map((v) => DeadLetterContract.decode(v));
    assert.equal(dead.code, 'DKIM_KEY_MISSING');
    assert.match(dead.reason, /no DKIM key for other\.example/);
    const failed = producer.on('email.events').map((v) => EmailEventContract.decode(v));
    assert.deepEqual(failed.map((e) => [e.type, e.messageId]), [['failed', req.messageId]]);
    assert.deepEqual(seen.failed, ['DKIM_KEY_MISSING']);
  });
});

describe('renderer: sender domains (records produced straight to Kafka)', () => {
  const domains = { acme: ['acme.com', '*.mail.acme.com'], 'acme/eu': ['acme.eu'] };

  test('a listed tenant with a foreign From domain is dead-lettered SENDER_DOMAIN with a failed event; its own domains render', async () => {
    const { producer, renderer, seen } = setup({ senderDomains: domains });
    const bad = emailRequest({ tenant: 'acme', from: { email: 'ceo@acme.eu' } });
    await renderer.handle(record(bad));
    await renderer.handle(record(emailRequest({ tenant: 'acme', from: { email: 'x@eu.mail.acme.com' } })));
    await renderer.handle(record(emailRequest({ tenant: 'acme/eu', from: { email: 'x@acme.eu' } })));
    await renderer.handle(record(emailRequest({ tenant: 'globex', from: { email: 'x@anything.org' } })));
    const [dead, ...more] = producer.on('email.dead').map((v) => DeadLetterContract.decode(v));
    assert.equal(more.length, 0);
    assert.equal(dead.code, 'SENDER_DOMAIN');
    assert.equal(dead.messageId, bad.messageId);
    assert.match(dead.reason, /from\.email: the domain "acme\.eu" is not one of this tenant's sender domains/);
    assert.deepEqual(seen.failed, ['SENDER_DOMAIN']);
    const events = producer.on('email.events').map((v) => EmailEventContract.decode(v));
    assert.deepEqual(events.filter((e) => e.type === 'failed').map((e) => e.messageId), [bad.messageId]);
    assert.equal(producer.on('email.dispatch.transactional').length, 3);
  });

  test('acme/eu may not use acme\'s domain, nor acme acme/eu\'s', async () => {
    const { producer, renderer } = setup({ senderDomains: domains });
    await renderer.handle(record(emailRequest({ tenant: 'acme/eu', from: { email: 'x@acme.com' } })));
    await renderer.handle(record(emailRequest({ tenant: 'acme', from: { email: 'x@acme.eu' } })));
    assert.deepEqual(producer.on('email.dead').map((v) => DeadLetterContract.decode(v).code), ['SENDER_DOMAIN', 'SENDER_DOMAIN']);
  });
});

describe('renderer start-up: the keys directory is checked like config', () => {
  test('a weak key or an unreadable directory refuses start-up, naming the file; nothing connects', async () => {
    const fs = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const { startRenderer } = await import('./main.js');
    const { loadPostlineConfig } = await import('../../shared/config.js');
    const { ConfigError } = await import('../../shared/config-loader.js');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dkim-start-'));
    try {
      fs.mkdirSync(path.join(dir, 'shop.example'));
      const weak = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' });
      fs.writeFileSync(path.join(dir, 'shop.example', 'old.pem'), weak);
      // An unreachable broker: start-up must fail on the keys before trying it.
      const config = (keysDir: string) => loadPostlineConfig({ env: {}, overrides: { 'log.level': 'silent', 'kafka.brokers': ['127.0.0.1:1'], 'renderer.dkim.keysDir': keysDir } });
      await assert.rejects(startRenderer(config(dir)), (err: unknown) => err instanceof ConfigError && /shop\.example\/old\.pem: an RSA key of 1024 bits is too weak/.test((err as Error).message));
      await assert.rejects(startRenderer(config(path.join(dir, 'missing'))), (err: unknown) => err instanceof ConfigError && /POSTLINE_RENDERER_DKIM_KEYS_DIR .*missing.*cannot be read \(ENOENT\)/.test((err as Error).message));
    } finally {
      fs.rmSync(dir, { recursive: true });
    }
  });
});
