/**
 * Amazon SES feedback through SNS, end to end on the send API with real parts: an embedded
 * broker, SNS messages signed (v1 and v2) by a key whose certificate a loopback HTTPS host
 * serves under the fake internet's CA, and refs signed by the feedback keyring. A permanent
 * bounce and a complaint become events tied to the message by the verified ref; forgeries,
 * foreign topics and certificate URLs on other hosts are refused before anything is fetched
 * or published; a broker that does not answer gets a 503 so SNS retries.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Topics } from '../../shared/topics.js';
import { FeedbackKeyring } from '../../shared/feedback/feedback-token.js';
import type { IngestHandle } from '../../services/ingest/main.js';
import { createCertificateAuthority, type CertificateAuthority } from '../helpers/fake-internet/certificates.js';
import { waitFor } from '../helpers/broker.js';
import { IngestHarness } from '../ingest/ingest-harness.js';
import { startFakeSns, type FakeSns } from './fake-sns.js';

const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:ses-feedback';
const KEY = { id: 3, secret: 'provider-feedback-test-secret-0123456789' };
const keyring = new FeedbackKeyring([KEY]);
const stranger = new FeedbackKeyring([{ id: 3, secret: 'another-installation-secret-0123456789' }]);

let h: IngestHarness;
let ca: CertificateAuthority;
let sns: FakeSns;
let ingest: IngestHandle;

before(async () => {
  h = await IngestHarness.start();
  ca = await createCertificateAuthority();
  ca.trustInProcess();
  sns = await startFakeSns(ca);
  ingest = await h.ingest({
    'ingest.metricsOnApiPort': true,
    'feedback.keys': [KEY],
    'providerFeedback.sesTopicArns': [TOPIC],
    'providerFeedback.snsCertHostPattern': '^127\\.0\\.0\\.1:\\d+$',
    'providerFeedback.snsFetchTimeoutMs': 2000,
    'providerFeedback.publishTimeoutMs': 1500,
  });
  await h.collect();
});
after(async () => {
  await h.stop();
  await sns.close();
  await ca.close();
});

const post = (body: unknown, contentType = 'text/plain; charset=UTF-8') =>
  ingest.app.inject({ method: 'POST', url: '/feedback/ses', headers: { 'content-type': contentType, 'x-amz-sns-message-type': 'Notification' }, payload: typeof body === 'string' ? body : JSON.stringify(body) });

function refFor(tenant: string, recipient = 'bob@example.org') {
  const messageId = randomUUID();
  return { messageId, token: keyring.sign({ purpose: 'ref', messageId, tenant, recipient, fromDomain: 'acme.com', listId: 'news' }) };
}

const mail = (token?: string) => ({
  timestamp: '2026-12-03T10:00:00.000Z',
  source: 'news@acme.com',
  messageId: '0102018f-ses-message-id',
  destination: ['bob@example.org'],
  headersTruncated: false,
  headers: [{ name: 'From', value: 'news@acme.com' }, ...(token ? [{ name: 'X-Postline-Ref', value: token }] : [])],
});

const bounce = (token: string | undefined, bounceType = 'Permanent', diagnosticCode = 'smtp; 550 5.1.1 The email account that you tried to reach does not exist.') => ({
  notificationType: 'Bounce',
  bounce: {
    bounceType,
    bounceSubType: 'General',
    bouncedRecipients: [{ emailAddress: 'Bob@example.org', action: 'failed', status: '5.1.1', diagnosticCode }],
    timestamp: '2026-12-03T10:00:05.000Z',
    feedbackId: '0102018f-feedback',
  },
  mail: mail(token),
});

const eventsOf = async (messageId: string) => (await h.waitForKey(Topics.events, messageId)).map((r) => r.value);

async function nothingPublished(run: () => Promise<void>): Promise<void> {
  const before = await h.endOffset(Topics.events);
  await run();
  assert.equal(await h.endOffset(Topics.events), before, 'no event was published');
}

async function metric(outcome: string): Promise<number> {
  const text = (await ingest.app.inject({ method: 'GET', url: '/metrics' })).body;
  const line = text.split('\n').find((l) => l.startsWith('postline_provider_feedback_total{') && l.includes('provider="ses"') && l.includes(`outcome="${outcome}"`));
  return line ? Number(line.split(' ').pop()) : 0;
}

test('a permanent SES bounce (SignatureVersion 2) becomes a bounced event for the message and recipient of the ref', async () => {
  const { messageId, token } = refFor('acme/eu');
  const res = await post(sns.notification(TOPIC, bounce(token)));
  assert.equal(res.statusCode, 200, res.body);
  // Answered only after the ack: the event is already on the topic.
  const [event] = await eventsOf(messageId);
  assert.equal(event.type, 'bounced');
  assert.equal(event.tenant, 'acme/eu');
  assert.equal(event.stage, 'provider-feedback');
  assert.equal(event.via, 'ses');
  assert.deepEqual(event.recipients, ['bob@example.org']);
  assert.equal(event.domain, 'example.org');
  assert.equal(event.fromDomain, 'acme.com');
  assert.equal(event.listId, 'news');
  assert.equal(event.category, 'unknown-user');
  assert.equal(event.bounceClass, 'recipient');
  assert.equal(event.at, '2026-12-03T10:00:05.000Z');
  assert.deepEqual(event.smtp, { code: 550, enhanced: '5.1.1', message: '550 5.1.1 The email account that you tried to reach does not exist.' });
  assert.ok(sns.requests.includes('/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem'), 'the signing certificate was fetched from the allowed host');
});

test('an SES complaint (SignatureVersion 1) becomes complained with its feedback type; no type means abuse', async () => {
  const a = refFor('acme');
  const b = refFor('acme');
  const complaint = (token: string, type?: string) => ({
    notificationType: 'Complaint',
    complaint: { complainedRecipients: [{ emailAddress: 'bob@example.org' }], timestamp: '2026-12-03T11:00:00.000Z', feedbackId: 'f', ...(type ? { complaintFeedbackType: type } : {}) },
    mail: mail(token),
  });
  assert.equal((await post(sns.notification(TOPIC, complaint(a.token, 'fraud'), { version: '1' }))).statusCode, 200);
  assert.equal((await post(sns.notification(TOPIC, complaint(b.token)))).statusCode, 200);
  const [ea] = await eventsOf(a.messageId);
  const [eb] = await eventsOf(b.messageId);
  assert.deepEqual([ea.type, ea.tenant, ea.category, ea.via], ['complained', 'acme', 'fraud', 'ses']);
  assert.deepEqual([eb.type, eb.category], ['complained', 'abuse']);
});

test('forged or altered SNS messages, other topics and other certificate hosts are refused with 401 and publish nothing', async () => {
  const { token } = refFor('acme');
  const signed = sns.notification(TOPIC, bounce(token));
  const fetchesBefore = sns.requests.length;
  const badSignature = await metric('bad-signature');
  await nothingPublished(async () => {
    // The body changed after signing (another recipient's ref would be worth forging).
    const altered = { ...signed, Message: signed.Message.replace('Permanent', 'Permanent ') };
    assert.equal((await post(altered)).statusCode, 401);
    assert.equal((await post({ ...signed, Signature: Buffer.alloc(256, 1).toString('base64') })).statusCode, 401);
    // Another topic, correctly signed: refused before any fetch.
    assert.equal((await post(sns.notification('arn:aws:sns:eu-west-1:123456789012:someone-else', bounce(token)))).statusCode, 401);
    // Certificate URLs that are not on the allowed host (SSRF guard), re-signed so only the URL is wrong.
    for (const certUrl of ['https://127.0.0.2:1/SimpleNotificationService-x.pem', `http://${sns.host}/SimpleNotificationService-x.pem`, `https://${sns.host}/not-a-cert`, 'https://sns.eu-west-1.amazonaws.com.evil.test/x.pem']) {
      assert.equal((await post(sns.notification(TOPIC, bounce(token), { certUrl }))).statusCode, 401, certUrl);
    }
    assert.equal((await post('not json')).statusCode, 400);
  });
  assert.equal(sns.requests.length, fetchesBefore, 'nothing was fetched for a refused message (the certificate was cached already)');
  assert.equal((await metric('bad-signature')) - badSignature, 2);
  assert.ok((await metric('bad-topic')) >= 1 && (await metric('bad-url')) >= 4);
});

test('transient bounces, deliveries, messages without a ref and refs that do not verify are answered 200 and only counted', async () => {
  const { token } = refFor('acme');
  const noRef = await metric('no-ref');
  const badRef = await metric('bad-ref');
  const transient = await metric('transient');
  await nothingPublished(async () => {
    for (const message of [
      bounce(token, 'Transient', 'smtp; 452 4.2.2 Mailbox full'),
      { notificationType: 'Delivery', delivery: { recipients: ['bob@example.org'] }, mail: mail(token) },
      bounce(undefined),
      bounce(stranger.sign({ purpose: 'ref', messageId: randomUUID(), tenant: 'acme', recipient: 'bob@example.org' })),
      bounce(keyring.sign({ purpose: 'unsubscribe', messageId: randomUUID(), tenant: 'acme', recipient: 'bob@example.org' })),
    ]) {
      assert.equal((await post(sns.notification(TOPIC, message))).statusCode, 200);
    }
  });
  assert.equal((await metric('no-ref')) - noRef, 1);
  assert.equal((await metric('bad-ref')) - badRef, 2);
  assert.equal((await metric('transient')) - transient, 1);
});

test('a SubscriptionConfirmation is confirmed by fetching its SubscribeURL, only on an allowed host', async () => {
  const confirmation = sns.subscriptionConfirmation(TOPIC);
  assert.equal((await post(confirmation)).statusCode, 200);
  assert.ok(sns.requests.some((p) => p.startsWith('/confirm?') && p.includes(confirmation.Token)), 'SubscribeURL fetched');
  const fetches = sns.requests.length;
  const elsewhere = sns.subscriptionConfirmation(TOPIC, { subscribeUrl: 'https://127.0.0.3:9/confirm?Action=ConfirmSubscription' });
  assert.equal((await post(elsewhere)).statusCode, 401);
  assert.equal(sns.requests.length, fetches);
  assert.equal((await post(sns.subscriptionConfirmation('arn:aws:sns:eu-west-1:123456789012:someone-else'))).statusCode, 401);
});

test('oversized bodies get 413', async () => {
  const res = await post('x'.repeat(1024 * 1024 + 1));
  assert.equal(res.statusCode, 413);
});

test('broker not answering → 503 (SNS retries); back → 200 and the event is there', async () => {
  const { messageId, token } = refFor('acme');
  const body = sns.notification(TOPIC, bounce(token));
  await h.stopBroker();
  const started = Date.now();
  const res = await post(body);
  assert.equal(res.statusCode, 503, res.body);
  assert.ok(Date.now() - started < 10_000, 'answered within the publish timeout');
  await h.restartBroker();
  await waitFor(async () => (await post(body)).statusCode === 200, 30_000, 'a 200 once the broker is back');
  const events = await eventsOf(messageId);
  assert.ok(events.some((e) => e.type === 'bounced'));
});
