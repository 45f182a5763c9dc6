/**
 * The gateway with the broker down: a message is answered 451 (never 250: the client keeps it
 * and retries), and once the same broker is back the next one is acknowledged and on its lane.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Topics } from '../../shared/topics.js';
import { waitFor, startTestBroker } from '../helpers/broker.js';
import { GatewayHarness, KEYS } from './gateway-harness.js';
import { SmtpClient } from './smtp-client.js';

let h: GatewayHarness;

before(async () => {
  h = await GatewayHarness.start({ 'smtpGateway.produceTimeoutMs': 1500 }, { pipeline: false });
});

after(async () => {
  await h?.stop();
});

const mail = (from: string, to: string) => ({ from, to, subject: 'outage', text: 'hello' });

/** An authenticated raw session; resolves with the client after AUTH's reply. */
async function session(key: string): Promise<{ client: SmtpClient; auth: number }> {
  const { client } = await SmtpClient.connect(h.gateway.submissionsPort, { tls: true });
  await client.cmd('EHLO outage.test');
  return { client, auth: (await client.authPlain(key)).code };
}

test('broker down: 451, never 250; broker back: 250 and the record on its lane', async () => {
  const port = h.broker.port;
  const dataDir = h.broker.dataDir;
  await h.broker.close();
  const { client, auth } = await session(KEYS['acme/eu']);
  try {
    assert.equal(auth, 235);
    assert.equal((await client.cmd('MAIL FROM:<b@eu.acme.test>')).code, 250);
    assert.equal((await client.cmd('RCPT TO:<down@example.org>')).code, 250);
    const reply = await client.data('From: b@eu.acme.test\r\nSubject: while down\r\n\r\nhello\r\n');
    assert.equal(reply.code, 451, reply.text);
    assert.match(reply.text, /4\.3\.0/);
  } finally {
    client.close();
  }
  // The same broker (port, log) back: the gateway's producer reconnects.
  h.broker = await startTestBroker({ port, dataDir });
  const back = await waitFor(
    async () => {
      const r = await h.send(KEYS['acme/eu'], mail('b@eu.acme.test', 'up@example.org'));
      return r.ok ? r : undefined;
    },
    60_000,
    'a message acknowledged after the broker is back',
  );
  await waitFor(
    () => h.reader.records.some((r) => r.topic === Topics.requestedFor('transactional') && JSON.parse(r.message.value!.toString()).messageId === back.messageId),
    30_000,
    'the record on email.requested.transactional',
  );
});
