/**
 * The gateway's limits, on the gateway alone (no renderer): a tenant over its message rate gets
 * 451 4.7.1 while the other tenant (`acme/eu` beside `acme`) is unaffected; a client IP with too
 * many failed AUTHs is refused (454, then 421 at connect) while another IP still logs in; the
 * connection cap answers 421.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { GatewayHarness, KEYS } from './gateway-harness.js';
import { SmtpClient } from './smtp-client.js';

let h: GatewayHarness;

before(async () => {
  h = await GatewayHarness.start(
    {
      'smtpGateway.rateLimitMax': 2,
      'smtpGateway.rateLimitWindowSeconds': 600,
      'smtpGateway.authFailureMax': 2,
      'smtpGateway.maxConnections': 3,
    },
    { pipeline: false },
  );
});

after(async () => {
  await h?.stop();
});

const mail = (from: string, to: string) => ({ from, to, subject: 'limits', text: 'hello' });

/** An authenticated raw session from `localAddress`; resolves with the client after AUTH's reply. */
async function session(key: string, localAddress = '127.0.0.1'): Promise<{ client: SmtpClient; auth: number }> {
  const { client } = await SmtpClient.connect(h.gateway.submissionsPort, { tls: true, localAddress });
  await client.cmd('EHLO limits.test');
  return { client, auth: (await client.authPlain(key)).code };
}

test('per-tenant message rate: acme over its limit gets 451 4.7.1, acme/eu is not affected', async () => {
  for (let i = 0; i < 2; i++) assert.ok((await h.send(KEYS.acme, mail('a@acme.test', `r${i}@example.org`))).ok);
  const over = await h.send(KEYS.acme, mail('a@acme.test', 'r3@example.org'));
  assert.equal(over.ok, false);
  assert.equal(over.ok === false && over.code, 451);
  assert.match(over.response, /4\.7\.1 message rate limit/);
  assert.ok((await h.send(KEYS['acme/eu'], mail('b@eu.acme.test', 'r4@example.org'))).ok, 'another tenant keeps its own budget');
  assert.equal(await h.counter('postline_smtp_gateway_refused_total', { reason: 'rate-limit' }), 1);
});

test('failed AUTHs per client IP: after the limit the IP is refused (454, then 421 at connect); other IPs still log in', async () => {
  const { client } = await SmtpClient.connect(h.gateway.submissionsPort, { tls: true, localAddress: '127.0.0.2' });
  try {
    await client.cmd('EHLO bad.test');
    assert.equal((await client.authPlain('pl_wrong_1')).code, 535);
    assert.equal((await client.authPlain('pl_wrong_2')).code, 535);
    assert.equal((await client.authPlain(KEYS['acme/eu'])).code, 454, 'even the right key is refused while the IP is blocked');
  } finally {
    client.close();
  }
  const again = await SmtpClient.connect(h.gateway.submissionsPort, { tls: true, localAddress: '127.0.0.2' });
  assert.equal(again.greeting.code, 421);
  again.client.close();
  const other = await session(KEYS['acme/eu'], '127.0.0.3');
  assert.equal(other.auth, 235);
  other.client.close();
  assert.equal(await h.counter('postline_smtp_gateway_auth_failures_total'), 2);
});

test('the connection cap answers 421 to one connection too many', async () => {
  const open = await Promise.all([1, 2, 3].map(() => SmtpClient.connect(h.gateway.submissionPort)));
  try {
    assert.deepEqual(open.map((o) => o.greeting.code), [220, 220, 220]);
    const extra = await SmtpClient.connect(h.gateway.submissionPort);
    assert.equal(extra.greeting.code, 421);
    extra.client.close();
  } finally {
    for (const o of open) o.client.close();
  }
});
