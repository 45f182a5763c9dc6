/**
 * The SendGrid Event Webhook end to end on the send API with an embedded broker: requests signed
 * with a generated P-256 key (as SendGrid signs: ECDSA over timestamp + raw body), refs carried
 * in the postline_ref unique arg that espHeadersFor puts on each message. Bounces and spam
 * reports become events; tampered bodies, other keys and stale timestamps get 401 and publish
 * nothing; events that are not feedback, or whose ref does not verify, are only counted.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';
import { Topics } from '../../shared/topics.js';
import { FeedbackKeyring } from '../../shared/feedback/feedback-token.js';
import { espHeadersFor, SENDGRID_REF_ARG } from '../../shared/feedback/esp-headers.js';
import type { IngestHandle } from '../../services/ingest/main.js';
import { IngestHarness } from '../ingest/ingest-harness.js';

const KEY = { id: 1, secret: 'sendgrid-feedback-test-secret-0123456789' };
const keyring = new FeedbackKeyring([KEY]);
const sendgridKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const otherKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });

let h: IngestHarness;
let ingest: IngestHandle;

before(async () => {
  h = await IngestHarness.start();
  ingest = await h.ingest({
    'ingest.metricsOnApiPort': true,
    'feedback.keys': [KEY],
    // The form SendGrid's settings page shows: base64 of the DER public key.
    'providerFeedback.sendgridPublicKey': sendgridKey.publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
    'providerFeedback.sendgridMaxAgeSeconds': 300,
  });
  await h.collect();
});
after(() => h.stop());

function signed(events: unknown[], opts: { key?: KeyObject; timestamp?: number } = {}) {
  const body = JSON.stringify(events);
  const timestamp = String(opts.timestamp ?? Math.floor(Date.now() / 1000));
  const signature = sign('sha256', Buffer.from(timestamp + body), opts.key ?? sendgridKey.privateKey).toString('base64');
  return { body, headers: { 'content-type': 'application/json', 'x-twilio-email-event-webhook-signature': signature, 'x-twilio-email-event-webhook-timestamp': timestamp } };
}

const post = (req: { body: string; headers: Record<string, string> }) => ingest.app.inject({ method: 'POST', url: '/feedback/sendgrid', headers: req.headers, payload: req.body });

/** A message's ref as SendGrid echoes it: the unique arg of the X-SMTPAPI header espHeadersFor built. */
function refFor(tenant: string, recipient = 'carol@example.net') {
  const messageId = randomUUID();
  const token = keyring.sign({ purpose: 'ref', messageId, tenant, recipient, fromDomain: 'mail.acme.com' });
  const arg = JSON.parse(espHeadersFor(token, ['sendgrid'])['X-SMTPAPI']).unique_args[SENDGRID_REF_ARG] as string;
  return { messageId, arg };
}

const event = (kind: string, ref: string | undefined, extra: Record<string, unknown> = {}) => ({
  email: 'carol@example.net',
  timestamp: 1_796_300_000,
  event: kind,
  sg_event_id: randomUUID(),
  sg_message_id: 'sg-1.filter',
  ...(ref ? { [SENDGRID_REF_ARG]: ref } : {}),
  ...extra,
});

async function metric(outcome: string): Promise<number> {
  const text = (await ingest.app.inject({ method: 'GET', url: '/metrics' })).body;
  const line = text.split('\n').find((l) => l.startsWith('postline_provider_feedback_total{') && l.includes('provider="sendgrid"') && l.includes(`outcome="${outcome}"`));
  return line ? Number(line.split(' ').pop()) : 0;
}

async function nothingPublished(run: () => Promise<void>): Promise<void> {
  const before = await h.endOffset(Topics.events);
  await run();
  assert.equal(await h.endOffset(Topics.events), before, 'no event was published');
}

test('one signed POST with a bounce, a block and a spam report: three events, each for its own message and tenant', async () => {
  const hard = refFor('acme');
  const blocked = refFor('acme/eu');
  const spam = refFor('acme/eu');
  const res = await post(
    signed([
      event('bounce', hard.arg, { type: 'bounce', status: '5.1.1', reason: '550 5.1.1 The email account that you tried to reach does not exist.' }),
      event('bounce', blocked.arg, { type: 'blocked', status: '5.7.1', reason: '550 5.7.1 Service unavailable, client host blocked using Spamhaus' }),
      event('spamreport', spam.arg),
      event('delivered', hard.arg),
    ]),
  );
  assert.equal(res.statusCode, 200, res.body);
  const [b] = (await h.waitForKey(Topics.events, hard.messageId)).map((r) => r.value);
  assert.deepEqual([b.type, b.tenant, b.via, b.category, b.bounceClass, b.fromDomain], ['bounced', 'acme', 'sendgrid', 'unknown-user', 'recipient', 'mail.acme.com']);
  assert.deepEqual(b.recipients, ['carol@example.net']);
  assert.deepEqual(b.smtp, { code: 550, enhanced: '5.1.1', message: '550 5.1.1 The email account that you tried to reach does not exist.' });
  assert.equal(b.at, new Date(1_796_300_000_000).toISOString());
  // A block is final at SendGrid too, but the receiver's policy is no reason to suppress the recipient.
  const [k] = (await h.waitForKey(Topics.events, blocked.messageId)).map((r) => r.value);
  assert.deepEqual([k.type, k.tenant, k.bounceClass], ['bounced', 'acme/eu', 'infrastructure']);
  const [s] = (await h.waitForKey(Topics.events, spam.messageId)).map((r) => r.value);
  assert.deepEqual([s.type, s.tenant, s.category, s.via], ['complained', 'acme/eu', 'abuse', 'sendgrid']);
  await h.caughtUp();
  assert.equal(h.on(Topics.events, hard.messageId).length, 1, 'the delivered event published nothing');
});

test('tampered bodies, another key, missing headers and stale or future timestamps get 401', async () => {
  const { arg } = refFor('acme');
  const good = signed([event('bounce', arg, { type: 'bounce', status: '5.1.1', reason: '550 5.1.1 no such user' })]);
  const badSignature = await metric('bad-signature');
  const stale = await metric('stale');
  await nothingPublished(async () => {
    assert.equal((await post({ ...good, body: good.body.replace('carol@', 'carl@') })).statusCode, 401);
    assert.equal((await post({ ...good, body: good.body.replace('5.1.1', '5.1.2') })).statusCode, 401);
    assert.equal((await post(signed(JSON.parse(good.body), { key: otherKey.privateKey }))).statusCode, 401);
    assert.equal((await post({ ...good, headers: { ...good.headers, 'x-twilio-email-event-webhook-signature': 'bm90IGEgc2lnbmF0dXJl' } })).statusCode, 401);
    assert.equal((await post({ body: good.body, headers: { 'content-type': 'application/json' } })).statusCode, 401);
    // The same signature with another timestamp does not verify; an old, correctly signed request is a replay.
    assert.equal((await post({ ...good, headers: { ...good.headers, 'x-twilio-email-event-webhook-timestamp': String(Number(good.headers['x-twilio-email-event-webhook-timestamp']) + 1) } })).statusCode, 401);
    assert.equal((await post(signed(JSON.parse(good.body), { timestamp: Math.floor(Date.now() / 1000) - 3600 }))).statusCode, 401);
    assert.equal((await post(signed(JSON.parse(good.body), { timestamp: Math.floor(Date.now() / 1000) + 3600 }))).statusCode, 401);
  });
  assert.equal((await metric('bad-signature')) - badSignature, 6);
  assert.equal((await metric('stale')) - stale, 2);
});

test('events without a ref or with one that does not verify, and events that are not feedback, are answered 200 and counted', async () => {
  const stranger = new FeedbackKeyring([{ id: 1, secret: 'someone-elses-feedback-secret-0123456789' }]);
  const noRef = await metric('no-ref');
  const badRef = await metric('bad-ref');
  const notFeedback = await metric('not-feedback');
  await nothingPublished(async () => {
    const res = await post(
      signed([
        event('bounce', undefined, { type: 'bounce', reason: '550 5.1.1 no such user' }),
        event('spamreport', stranger.sign({ purpose: 'ref', messageId: randomUUID(), tenant: 'acme', recipient: 'carol@example.net' })),
        event('dropped', refFor('acme').arg, { reason: 'Bounced Address' }),
        event('deferred', refFor('acme').arg, { response: '451 4.7.1 try later' }),
        'not an object',
      ]),
    );
    assert.equal(res.statusCode, 200, res.body);
    assert.equal((await post(signed({ not: 'an array' } as unknown as unknown[]))).statusCode, 400);
  });
  assert.equal((await metric('no-ref')) - noRef, 1);
  assert.equal((await metric('bad-ref')) - badRef, 1);
  assert.equal((await metric('not-feedback')) - notFeedback, 2);
});

test('the SES endpoint is absent (404) when no SNS topic is configured', async () => {
  assert.equal((await ingest.app.inject({ method: 'POST', url: '/feedback/ses', payload: '{}' })).statusCode, 404);
});
