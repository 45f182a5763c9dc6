/**
 * DKIM and sender domains on the whole pipeline (ingest, renderer, dispatcher, scheduler as
 * processes): keys from a directory made by `postline dkim keygen`, a relay that defers the
 * first attempt, and mailauth's verifier (not the signing code) checking what the relay
 * received against the TXT records keygen printed. The message that went through a retry
 * arrives with the signature the renderer made, byte for byte. A tenant's foreign From domain
 * is refused on every send path: 400 naming `from` on POST /v1/emails and per item on
 * /v1/emails/batch, and SENDER_DOMAIN (dead letter + failed event) for a record produced
 * straight to Kafka.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { startSmtpSink, type SinkMessage, type SmtpSink } from '../helpers/smtp-sink.js';
import { waitFor } from '../helpers/broker.js';
import { TopicReader } from '../helpers/topic-reader.js';
import { API_KEY, FaultPipeline, TENANT } from '../faults/fault-pipeline.js';
import { runDkimCommand } from '../../services/dkim-command.js';
import { Topics } from '../../shared/topics.js';
import { EmailRequestedContract } from '../../shared/contracts/email-requested.js';
import { EmailReadyForDispatchContract, type EmailReadyForDispatch } from '../../shared/contracts/email-ready-for-dispatch.js';
import { emailRequest } from './email-requests.js';

let sink: SmtpSink | undefined;
let pipeline: FaultPipeline | undefined;
let reader: TopicReader | undefined;
const keysDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dkim-e2e-'));

after(async () => {
  await reader?.stop();
  await pipeline?.close();
  await sink?.close();
  fs.rmSync(keysDir, { recursive: true, force: true });
});

/** `postline dkim keygen`; returns the TXT record's strings as printed. */
async function keygen(domain: string, selector: string, type: 'rsa' | 'ed25519'): Promise<string[]> {
  const out: string[] = [];
  assert.equal(await runDkimCommand(['keygen', '--domain', domain, '--selector', selector, '--type', type, '--dir', keysDir], { out: (l) => out.push(l), err: () => {}, env: {} }), 0);
  return [...out.join('\n').matchAll(/"([^"]*)"/g)].map((m) => m[1]);
}

test('signed on the pipeline, verified independently after a retry; foreign From domains refused on every path', async () => {
  const records = new Map<string, string[]>([
    ['s1._domainkey.shop.test', await keygen('shop.test', 's1', 'rsa')],
    ['e1._domainkey.brand.test', await keygen('brand.test', 'e1', 'ed25519')],
  ]);
  const resolver = async (name: string, rr: string): Promise<string[][]> => {
    const r = rr === 'TXT' ? records.get(name) : undefined;
    if (r) return [r];
    throw Object.assign(new Error(`no ${rr} for ${name}`), { code: 'ENOTFOUND' });
  };
  // The first attempt of every recipient is deferred (451): each message is delivered by a retry.
  sink = await startSmtpSink({ greetingDelay: false, script: (_rcpt, ctx) => (ctx.attempt === 1 ? { code: 451, message: '4.7.1 Try again later' } : 250) });
  pipeline = await FaultPipeline.start({
    stages: ['ingest', 'renderer', 'dispatcher', 'scheduler'],
    env: {
      POSTLINE_DISPATCHER_RELAY_HOST: sink.host,
      POSTLINE_DISPATCHER_RELAY_PORT: String(sink.port),
      POSTLINE_RETRY_DELAY1M_MS: '300',
      POSTLINE_RENDERER_DKIM_KEYS_DIR: keysDir,
      POSTLINE_INGEST_SENDER_DOMAINS: JSON.stringify({ [TENANT]: ['shop.test', '*.shop.test', 'brand.test'] }),
    },
  });
  reader = await new TopicReader(pipeline.broker.bootstrap, [Topics.dispatch('transactional')]).start();

  const unsubscribe = { 'List-Unsubscribe': '<https://shop.test/u/1>', 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' };
  const rsaId = await pipeline.send({ from: 'Shop <news@mail.shop.test>', to: ['ann@example.org'], subject: 'Offers', text: 'hello', headers: unsubscribe });
  const [edId] = await pipeline.sendBatch([{ from: 'hi@brand.test', to: ['bob@example.org'], subject: 'Hi', html: '<p>hi</p>' }]);
  assert.ok(edId);
  const sent = await pipeline.waitForEvents(2, 'sent', 60_000);
  assert.deepEqual(sent.map((e) => [e.messageId, e.attempt]).sort(), [[rsaId, 2], [edId, 2]].sort());
  const rendered = pipeline.events('rendered');
  assert.deepEqual(rendered.find((e) => e.messageId === rsaId)?.dkim, { domain: 'shop.test', selector: 's1' });
  assert.deepEqual(rendered.find((e) => e.messageId === edId)?.dkim, { domain: 'brand.test', selector: 'e1' });

  await waitFor(() => reader!.records.length >= 2, 10_000, 'the dispatch records');
  for (const [rcpt, domain] of [['ann@example.org', 'shop.test'], ['bob@example.org', 'brand.test']]) {
    const delivered: SinkMessage = sink.messagesTo(rcpt)[0];
    const dispatched: EmailReadyForDispatch = reader.records.map((r) => EmailReadyForDispatchContract.decode(r.message.value!)).find((d) => d.envelope.to.includes(rcpt))!;
    assert.equal(delivered.raw.toString('utf8'), dispatched.raw.replace(/\r?\n/g, '\r\n'), `${rcpt}: the retry sent the renderer's signed bytes`);
    const { results } = await dkimVerify(delivered.raw, { resolver });
    assert.equal(results.length, 1);
    assert.equal(results[0].status.result, 'pass', `${rcpt}: ${JSON.stringify(results[0].status)}`);
    assert.equal(results[0].signingDomain, domain);
  }
  assert.match(sink.messagesTo('ann@example.org')[0].raw.toString().split('\r\n\r\n')[0].replace(/\r\n\s+/g, ' '), /h=[^;]*List-Unsubscribe-Post/i);
  // The same bytes with the body changed no longer verify.
  const tampered = Buffer.from(sink.messagesTo('ann@example.org')[0].raw.toString().replace('hello', 'hellO'));
  assert.notEqual((await dkimVerify(tampered, { resolver })).results[0].status.result, 'pass');

  // Sender domains on every send path.
  const single = await fetch(`${pipeline.ingestUrl}/v1/emails`, {
    method: 'POST',
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ from: 'x@globex.test', to: ['c@example.org'], subject: 's', text: 't' }),
  });
  assert.equal(single.status, 400);
  assert.deepEqual(((await single.json()) as { error: { fields: Array<{ field: string }> } }).error.fields.map((f) => f.field), ['from']);
  const batch = await fetch(`${pipeline.ingestUrl}/v1/emails/batch`, {
    method: 'POST',
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ from: 'x@shop.test', to: ['d@example.org'], subject: 's', text: 't' }, { from: 'x@shop.test.evil', to: ['e@example.org'], subject: 's', text: 't' }] }),
  });
  const items = ((await batch.json()) as { results: Array<{ index: number; status: number; error?: { fields: Array<{ field: string; message: string }> } }> }).results;
  assert.deepEqual(items.map((i) => i.status), [202, 400]);
  assert.equal(items[1].error?.fields[0].field, 'from');
  assert.match(items[1].error?.fields[0].message ?? '', /shop\.test\.evil/);
  const foreign = emailRequest({ tenant: TENANT, from: { email: 'ceo@globex.test' }, to: [{ email: 'f@example.org' }] });
  await pipeline.producer.send({ topic: Topics.requested, acks: -1, messages: [{ key: foreign.messageId, value: EmailRequestedContract.encode(foreign) }] });
  const dead = await waitFor(() => pipeline!.deadLetters().find((d) => d.messageId === foreign.messageId), 30_000, 'the foreign record dead-lettered');
  assert.equal(dead.code, 'SENDER_DOMAIN');
  assert.equal(dead.stage, 'renderer');
  await waitFor(() => pipeline!.events('failed').some((e) => e.messageId === foreign.messageId), 10_000, 'its failed event');
  await waitFor(() => sink!.messagesTo('d@example.org').length === 1, 30_000, 'the batch item from its own domain arrives');
  assert.equal(sink.messagesTo('f@example.org').length + sink.messagesTo('e@example.org').length + sink.messagesTo('c@example.org').length, 0);
});
