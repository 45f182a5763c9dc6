/**
 * Unsubscribe on the whole pipeline (ingest, renderer, dispatcher as processes, a relay sink):
 * with feedback keys set, a bulk message to two recipients arrives as two copies, each with its
 * own signed return path as MAIL FROM, X-Postline-Ref and List-Unsubscribe (+ -Post); a
 * transactional message gets none of List-Unsubscribe. Posting RFC 8058's one-click body to the
 * URL a recipient received (through the send API, as the public URL's proxy would) yields one
 * `unsubscribed` event naming that recipient, the tenant and the list.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { waitFor } from '../helpers/broker.js';
import { FaultPipeline, TENANT } from '../faults/fault-pipeline.js';
import { FeedbackKeyring, tokenOfLocalPart } from '../../shared/feedback/feedback-token.js';

const KEY = { id: 1, secret: 'pipeline-unsubscribe-test-secret-0123456789' };
const keyring = new FeedbackKeyring([KEY]);

let sink: SmtpSink | undefined;
let pipeline: FaultPipeline | undefined;

after(async () => {
  await pipeline?.close();
  await sink?.close();
});

/** A header of a raw message, unfolded. */
function header(raw: Buffer, name: string): string | undefined {
  const head = raw.toString('utf8').split('\r\n\r\n')[0].replace(/\r\n[ \t]+/g, ' ');
  return head.split('\r\n').find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`))?.slice(name.length + 1).trim();
}

test('a bulk message arrives with List-Unsubscribe per recipient; posting to its URL yields an unsubscribed event', async () => {
  sink = await startSmtpSink({ greetingDelay: false, script: () => 250 });
  pipeline = await FaultPipeline.start({
    stages: ['ingest', 'renderer', 'dispatcher'],
    env: {
      POSTLINE_DISPATCHER_RELAY_HOST: sink.host,
      POSTLINE_DISPATCHER_RELAY_PORT: String(sink.port),
      POSTLINE_FEEDBACK_KEYS: JSON.stringify([KEY]),
      POSTLINE_FEEDBACK_RETURN_PATH_DOMAIN: 'bounces.shop.test',
      POSTLINE_FEEDBACK_UNSUBSCRIBE_URL: 'https://mail.shop.test',
    },
  });
  const bulkId = await pipeline.send({ from: 'Shop <news@shop.test>', to: ['ann@example.org', 'bob@example.org'], subject: 'Offers', text: 'hello', priority: 'bulk', listId: 'offers' });
  const txId = await pipeline.send({ from: 'Shop <orders@shop.test>', to: ['carl@example.org'], subject: 'Your order', text: 'thanks' });
  await pipeline.waitForEvents(3, 'sent', 60_000);

  for (const rcpt of ['ann@example.org', 'bob@example.org']) {
    const [msg] = sink.messagesTo(rcpt);
    assert.deepEqual(msg.to, [rcpt], 'one copy per recipient');
    const [local, domain] = msg.from.split('@');
    assert.equal(domain, 'bounces.shop.test');
    assert.equal(keyring.verify(tokenOfLocalPart(local, 'b-')!, 'return-path')?.messageId, bulkId);
    assert.equal(keyring.verify(header(msg.raw, 'X-Postline-Ref')!, 'ref')?.recipient, rcpt);
    assert.match(header(msg.raw, 'List-Unsubscribe')!, /^<https:\/\/mail\.shop\.test\/u\/[a-z2-7]+>, <mailto:u-[a-z2-7]+@bounces\.shop\.test>$/);
    assert.equal(header(msg.raw, 'List-Unsubscribe-Post'), 'List-Unsubscribe=One-Click');
  }
  const [tx] = sink.messagesTo('carl@example.org');
  assert.equal(header(tx.raw, 'List-Unsubscribe'), undefined, 'transactional: no List-Unsubscribe by default');
  assert.ok(header(tx.raw, 'X-Postline-Ref'));
  assert.equal(pipeline.events('rendered').find((e) => e.messageId === bulkId)?.domainCount, 2);

  // Bob's mail client posts to the URL it received (the public host's proxy forwards /u/ to the send API).
  const url = new URL(/<(https:[^>]+)>/.exec(header(sink.messagesTo('bob@example.org')[0].raw, 'List-Unsubscribe')!)![1]);
  const page = await fetch(`${pipeline.ingestUrl}${url.pathname}`);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /bob@example\.org/);
  const res = await fetch(`${pipeline.ingestUrl}${url.pathname}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'List-Unsubscribe=One-Click',
    redirect: 'manual',
  });
  assert.equal(res.status, 200);
  const event = await waitFor(() => pipeline!.events('unsubscribed').find((e) => e.messageId === bulkId), 30_000, 'the unsubscribed event');
  assert.deepEqual([event.tenant, event.recipients, event.via, event.listId, event.fromDomain], [TENANT, ['bob@example.org'], 'one-click', 'offers', 'shop.test']);
  assert.equal(pipeline.events('unsubscribed').length, 1, 'the GET unsubscribed nobody');
  assert.equal(pipeline.events('unsubscribed').some((e) => e.messageId === txId), false);
});
