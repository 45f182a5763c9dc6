/**
 * The gateway's producer does not linger: every 250 waits for its record's acknowledgement, so
 * a linger would only add to each message's wait. Shown on a mocked `setTimeout` clock: with
 * timers frozen the message is still produced, acknowledged and answered 250 (a linger timer
 * would never fire and the message would never be sent), with its record and its accepted
 * event on the broker.
 */
import { test, before, after, mock } from 'node:test';
import assert from 'node:assert/strict';
import { Topics } from '../../shared/topics.js';
import { waitFor } from '../helpers/broker.js';
import { DOMAINS, GatewayHarness, KEYS } from './gateway-harness.js';
import { SmtpClient, type Reply } from './smtp-client.js';

let h: GatewayHarness;

before(async () => {
  h = await GatewayHarness.start({}, { pipeline: false });
});

after(async () => {
  mock.timers.reset();
  await h?.stop();
});

/** `work`, or 'timed out' after `ms` counted by setInterval (not mocked here). */
function within<T>(work: Promise<T>, ms: number): Promise<T | 'timed out'> {
  return new Promise((resolve) => {
    const started = Date.now();
    const tick = setInterval(() => {
      if (Date.now() - started < ms) return;
      clearInterval(tick);
      resolve('timed out');
    }, 50);
    void work.then((v) => {
      clearInterval(tick);
      resolve(v);
    });
  });
}

test('a message is produced and answered 250 without any setTimeout firing (no linger on the gateway producer)', async () => {
  const { client } = await SmtpClient.connect(h.gateway.submissionsPort, { tls: true });
  try {
    await client.cmd('EHLO no-linger.test');
    assert.equal((await client.authPlain(KEYS.acme)).code, 235);
    assert.equal((await client.cmd(`MAIL FROM:<a@${DOMAINS.acme}>`)).code, 250);
    assert.equal((await client.cmd('RCPT TO:<ann@example.org>')).code, 250);
    // From here on setTimeout callbacks never run: only the broker's acknowledgement can end DATA.
    mock.timers.enable({ apis: ['setTimeout'] });
    const reply = await within<Reply>(client.data(`From: a@${DOMAINS.acme}\r\nTo: ann@example.org\r\nSubject: no linger\r\n\r\nhello\r\n`), 30_000);
    mock.timers.reset();
    assert.notEqual(reply, 'timed out', 'the message waited for a timer (a producer linger)');
    const { code, text } = reply as Reply;
    assert.equal(code, 250, text);
    const id = /queued as (\S+)/.exec(text)?.[1];
    assert.ok(id, text);
    // Acknowledged before the 250: both are on the broker.
    await waitFor(() => h.reader.json<{ messageId: string }>(Topics.requestedFor('transactional')).some((r) => r.messageId === id), 30_000, 'the record');
    await h.waitForEvent('accepted', id!, 30_000);
  } finally {
    mock.timers.reset();
    client.close();
  }
});
