/**
 * Faults of the service's own making never cost a bounce: a classifier that throws (a bug) is
 * answered 451, so the sending MTA keeps the message and retries; the listener serves on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import pino from 'pino';
import nodemailer from 'nodemailer';
import { startInboundServer } from '../../services/inbound/inbound-server.js';
import type { EventInput } from '../../shared/events.js';
import { DOMAIN, fill, keyring, returnPath, unsubscribeAddress } from './inbound-harness.js';

test('an internal error while reading a message answers 451 and the next message is served', async () => {
  const published: EventInput[] = [];
  const outcomes: string[] = [];
  const server = await startInboundServer({
    host: '127.0.0.1',
    port: 0,
    maxMessageBytes: 1024 * 1024,
    maxConnections: 10,
    rateLimitMax: 0,
    rateLimitWindowSeconds: 60,
    domain: DOMAIN,
    complaintLocalParts: ['fbl'],
    keyring,
    classify: () => {
      throw new Error('a bug in the classifier');
    },
    publish: async (e) => published.push(e),
    publishTimeoutMs: 1000,
    logger: pino({ level: 'silent' }),
  });
  server.on('message', (_kind: string, outcome: string, reason: string) => outcomes.push(`${outcome}:${reason}`));
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: server.port, secure: false, ignoreTLS: true });
  try {
    const c = { messageId: randomUUID(), tenant: 'acme', recipient: 'jane.doe@gmail.com' };
    const err = await transport.sendMail({ envelope: { from: '', to: [returnPath(c)] }, raw: fill('gmail-dsn.eml', c, 'jane.doe@gmail.com') }).then(
      () => undefined,
      (e: { responseCode?: number }) => e,
    );
    assert.equal(err?.responseCode, 451);
    assert.deepEqual(outcomes, ['retry:internal-error']);
    // An unsubscribe needs no classifier: still served.
    const info = await transport.sendMail({ envelope: { from: 'a@b.c', to: [unsubscribeAddress(c)] }, raw: 'Subject: unsubscribe\r\n\r\n.\r\n' });
    assert.match(info.response, /^250 /);
    assert.deepEqual(published.map((e) => e.type), ['unsubscribed']);
  } finally {
    transport.close();
    await server.close();
  }
});
