/**
 * `net.close()` closes everything the fake internet started — with connections still open on
 * each server and an HTTP answer still pending — undoes in-process trust and deletes the CA.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import https from 'node:https';
import nodeNet from 'node:net';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { startFakeInternet } from '../helpers/fake-internet/index.js';

const refused = (port: number, host: string): Promise<string> =>
  new Promise((resolve) => {
    const socket = nodeNet.connect({ port, host });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(String(err.code)));
  });

test('close() stops every server with connections open, undoes trust, deletes the CA; twice is fine', async () => {
  const net = await startFakeInternet();
  const mx = await net.smtp({ name: 'mx.close.test' });
  await net.mtaSts('close.test', { mode: 'enforce', mx: ['mx.close.test'], maxAge: 60 });
  const hook = await net.http({ respond: () => ({ status: 200, delayMs: 60_000 }) });
  net.trustInProcess();
  assert.ok(https.globalAgent.options.ca);

  const smtp = new SMTPConnection({ host: mx.host, port: mx.port, localAddress: '127.0.0.2', tls: { ca: net.caPem, servername: 'mx.close.test' } });
  smtp.on('error', () => undefined);
  await new Promise<void>((resolve) => smtp.connect(() => resolve()));
  const dnsTcp = nodeNet.connect({ port: net.dns.port, host: '127.0.0.1' });
  dnsTcp.on('error', () => undefined);
  await new Promise((resolve) => dnsTcp.once('connect', resolve));
  const sts = nodeNet.connect({ port: 443, host: net.mtaStsServer!.address });
  sts.on('error', () => undefined);
  await new Promise((resolve) => sts.once('connect', resolve));
  void fetch(hook.url).catch(() => undefined);
  await hook.waitForRequests(1);

  const started = Date.now();
  await net.close();
  assert.ok(Date.now() - started < 2000, `closed in ${Date.now() - started} ms`);
  await net.close();

  assert.equal(await refused(mx.port, mx.host), 'ECONNREFUSED');
  assert.equal(await refused(net.dns.port, '127.0.0.1'), 'ECONNREFUSED');
  assert.equal(await refused(443, net.mtaStsServer!.address), 'ECONNREFUSED');
  assert.equal(await refused(hook.port, hook.host), 'ECONNREFUSED');
  assert.equal(https.globalAgent.options.ca, undefined);
  assert.equal(existsSync(net.caFile), false);
  smtp.close();
});
