/**
 * The fake internet's provider SMTP servers, driven by nodemailer's SMTPConnection bound to pool
 * source addresses (127.0.0.2, 127.0.0.3): what they record (peer, EHLO, TLS, DKIM verdicts by
 * mailauth against the fake DNS) and how they answer (throttle, greylist, unknown users,
 * blocklist, TLS required, self-signed certificates, slow replies, concurrent connections).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { isIP } from 'node:net';
import { dkimSign } from 'mailauth/lib/dkim/sign.js';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { waitFor } from '../helpers/broker.js';
import { startFakeInternet, type FakeInternet, type FakeSmtpServer } from '../helpers/fake-internet/index.js';

interface ClientOptions {
  localAddress?: string;
  ehlo?: string;
  /** 'verify': STARTTLS verifying against the harness CA; 'any': STARTTLS accepting any cert; 'off': never. */
  tls?: 'verify' | 'any' | 'off';
  servername?: string;
}

interface Reply {
  code?: number;
  response: string;
}

let net!: FakeInternet;

async function connect(server: FakeSmtpServer, opts: ClientOptions = {}): Promise<SMTPConnection> {
  const mode = opts.tls ?? 'verify';
  const conn = new SMTPConnection({
    host: server.host,
    port: server.port,
    localAddress: opts.localAddress ?? '127.0.0.2',
    name: opts.ehlo ?? 'mta2.sender.test',
    ignoreTLS: mode === 'off',
    connectionTimeout: 5000,
    greetingTimeout: 5000,
    tls: mode === 'verify' ? { ca: net.caPem, servername: opts.servername ?? (isIP(server.name) ? undefined : server.name) } : { rejectUnauthorized: false },
  });
  await new Promise<void>((resolve, reject) => {
    conn.once('error', reject);
    conn.connect(() => {
      conn.removeListener('error', reject);
      resolve();
    });
  });
  conn.on('error', () => undefined);
  return conn;
}

function send(conn: SMTPConnection, from: string, to: string, raw: string | Buffer): Promise<Reply> {
  return new Promise((resolve) => {
    conn.send({ from, to: [to] }, raw, (err, info) => {
      if (err) resolve({ code: (err as { responseCode?: number }).responseCode, response: String((err as { response?: string }).response ?? err.message) });
      else resolve({ code: 250, response: info.response });
    });
  });
}

async function sendOnce(server: FakeSmtpServer, from: string, to: string, raw: string | Buffer, opts: ClientOptions = {}): Promise<Reply> {
  const conn = await connect(server, opts);
  try {
    return await send(conn, from, to, raw);
  } finally {
    conn.close();
  }
}

const message = (from: string, to: string, subject = 'Hello'): string =>
  [`From: ${from}`, `To: ${to}`, `Subject: ${subject}`, 'Date: Thu, 03 Dec 2026 12:00:00 +0000', 'Message-ID: <1@sender.test>', '', 'Hello from the fake internet.', ''].join('\r\n');

describe('fake provider SMTP servers', () => {
  before(async () => {
    net = await startFakeInternet();
  });
  after(() => net.close());

  test('records envelope, raw bytes, peer address, EHLO name, TLS protocol; DKIM verified by mailauth against the fake DNS', async () => {
    const mx = await net.smtp({ host: '127.0.0.20', name: 'mx1.dkim.test', mxFor: 'dkim.test' });
    assert.deepEqual(await net.dns.nodeResolver().resolveMx('dkim.test'), [{ exchange: 'mx1.dkim.test', priority: 10 }]);
    assert.deepEqual(await net.dns.nodeResolver().resolve4('mx1.dkim.test'), ['127.0.0.20']);

    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const ed = generateKeyPairSync('ed25519');
    net.dns.txt('rsa1._domainkey.sender.test', `v=DKIM1; k=rsa; p=${rsa.publicKey.export({ type: 'spki', format: 'der' }).toString('base64')}`);
    net.dns.txt('ed1._domainkey.sender.test', `v=DKIM1; k=ed25519; p=${ed.publicKey.export({ type: 'spki', format: 'der' }).subarray(-32).toString('base64')}`);
    const body = message('news@sender.test', 'ann@dkim.test');
    const { signatures } = await dkimSign(body, {
      signatureData: [
        { signingDomain: 'sender.test', selector: 'rsa1', privateKey: rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, algorithm: 'rsa-sha256' },
        { signingDomain: 'sender.test', selector: 'ed1', privateKey: ed.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, algorithm: 'ed25519-sha256' },
      ],
    } as never);
    const signed = signatures + body;

    const before = Date.now();
    assert.equal((await sendOnce(mx, 'bounce@sender.test', 'ann@dkim.test', signed, { localAddress: '127.0.0.3', ehlo: 'mta3.sender.test' })).code, 250);
    assert.equal((await sendOnce(mx, 'bounce@sender.test', 'ann@dkim.test', signed.replace('Hello from', 'Tampered by'))).code, 250);
    assert.equal((await sendOnce(mx, 'bounce@sender.test', 'ann@dkim.test', signed.replace('Subject: Hello', 'Subject: Changed'))).code, 250);
    assert.equal((await sendOnce(mx, 'bounce@sender.test', 'ann@dkim.test', body)).code, 250);

    const [good, tampered, resubjected, unsigned] = mx.messages;
    assert.equal(good.from, 'bounce@sender.test');
    assert.deepEqual(good.to, ['ann@dkim.test']);
    assert.equal(good.raw.toString(), signed);
    assert.equal(good.peer, '127.0.0.3');
    assert.equal(good.ehlo, 'mta3.sender.test');
    assert.match(String(good.tls), /^TLSv1\.[23]$/);
    assert.ok(good.at >= before);
    assert.deepEqual(
      good.dkim.map((d) => [d.result, d.domain, d.selector, d.algorithm]),
      [
        ['pass', 'sender.test', 'rsa1', 'rsa-sha256'],
        ['pass', 'sender.test', 'ed1', 'ed25519-sha256'],
      ],
    );
    assert.ok(good.dkim[0].signedHeaders.includes('subject'), `signed headers: ${good.dkim[0].signedHeaders}`);
    assert.deepEqual(
      tampered.dkim.map((d) => [d.result, d.comment]),
      [
        ['neutral', 'body hash did not verify'],
        ['neutral', 'body hash did not verify'],
      ],
      'mailauth reports a changed body as neutral',
    );
    assert.deepEqual(
      resubjected.dkim.map((d) => d.result),
      ['fail', 'fail'],
      'a changed signed header fails the signature',
    );
    assert.equal(tampered.peer, '127.0.0.2');
    assert.deepEqual(unsigned.dkim, []);
    assert.ok(net.dns.queriesFor('rsa1._domainkey.sender.test', 'TXT').length >= 1, 'the verifier looked the key up in the fake DNS');
  });

  test('TLS: none (not offered), required (530 before STARTTLS), self-signed (unverifiable, accepted by opportunistic TLS)', async () => {
    const plain = await net.smtp({ tls: 'none' });
    assert.equal((await sendOnce(plain, 'a@sender.test', 'b@plain.test', message('a@sender.test', 'b@plain.test'))).code, 250);
    assert.equal(plain.messages[0].tls, null);

    const strict = await net.smtp({ tls: 'required', name: 'mx.strict.test' });
    const refused = await sendOnce(strict, 'a@sender.test', 'b@strict.test', message('a@sender.test', 'b@strict.test'), { tls: 'off' });
    assert.equal(refused.code, 530);
    assert.match(refused.response, /5\.7\.0 Must issue a STARTTLS command first/);
    assert.equal((await sendOnce(strict, 'a@sender.test', 'b@strict.test', message('a@sender.test', 'b@strict.test'))).code, 250);
    assert.match(String(strict.messages[0].tls), /^TLSv1/);

    const self = await net.smtp({ name: 'mx.self.test', selfSigned: true });
    await assert.rejects(connect(self, { tls: 'verify' }), /self[- ]signed/i, 'a client verifying against the CA refuses it');
    assert.equal((await sendOnce(self, 'a@sender.test', 'b@self.test', message('a@sender.test', 'b@self.test'), { tls: 'any' })).code, 250);
    assert.match(String(self.messages[0].tls), /^TLSv1/);
  });

  test('throttling: 421 4.7.28 after N messages per window from one source address, other sources unaffected', async () => {
    const mx = await net.smtp({ script: { throttleAfterPerMinute: 2 } });
    const conn = await connect(mx, { localAddress: '127.0.0.2' });
    assert.equal((await send(conn, 'a@sender.test', 'x@t.test', message('a@sender.test', 'x@t.test'))).code, 250);
    assert.equal((await send(conn, 'a@sender.test', 'x@t.test', message('a@sender.test', 'x@t.test'))).code, 250);
    const third = await send(conn, 'a@sender.test', 'x@t.test', message('a@sender.test', 'x@t.test'));
    assert.equal(third.code, 421);
    assert.match(third.response, /4\.7\.28 .*rate limited/);
    await waitFor(() => mx.openConnections('127.0.0.2') === 0, 2000, 'the server to close the throttled connection');
    assert.equal((await sendOnce(mx, 'a@sender.test', 'x@t.test', message('a@sender.test', 'x@t.test'), { localAddress: '127.0.0.3' })).code, 250);
    assert.equal(mx.messagesFrom('127.0.0.2').length, 2);
    assert.deepEqual(
      mx.refusals.map((r) => [r.stage, r.code, r.peer]),
      [['mail', 421, '127.0.0.2']],
    );

    const windowed = await net.smtp({ script: { throttleAfterPerMinute: 1, throttleWindowMs: 300 } });
    assert.equal((await sendOnce(windowed, 'a@sender.test', 'x@t.test', message('a@sender.test', 'x@t.test'))).code, 250);
    assert.equal((await sendOnce(windowed, 'a@sender.test', 'x@t.test', message('a@sender.test', 'x@t.test'))).code, 421);
    await waitFor(async () => (await sendOnce(windowed, 'a@sender.test', 'x@t.test', message('a@sender.test', 'x@t.test'))).code === 250, 5000, 'the window to pass');
  });

  test('greylisting per (source, sender, recipient); unknown users 550 5.1.1; blocklisted sources 554 5.7.1', async () => {
    const mx = await net.smtp({ script: { greylist: true, unknownUsers: ['Nobody@t.test'], blockSources: ['127.0.0.4'] } });
    const raw = message('a@sender.test', 'x@t.test');
    const first = await sendOnce(mx, 'a@sender.test', 'x@t.test', raw);
    assert.equal(first.code, 451);
    assert.match(first.response, /4\.7\.1/);
    assert.equal((await sendOnce(mx, 'a@sender.test', 'x@t.test', raw)).code, 250, 'the retry passes');
    assert.equal((await sendOnce(mx, 'a@sender.test', 'x@t.test', raw, { localAddress: '127.0.0.3' })).code, 451, 'another source is greylisted again');
    assert.equal((await sendOnce(mx, 'b@sender.test', 'x@t.test', raw)).code, 451, 'another sender is greylisted again');

    const unknown = await sendOnce(mx, 'a@sender.test', 'nobody@t.test', raw);
    assert.equal(unknown.code, 550);
    assert.match(unknown.response, /5\.1\.1/);
    const blocked = await sendOnce(mx, 'a@sender.test', 'x@t.test', raw, { localAddress: '127.0.0.4' });
    assert.equal(blocked.code, 554);
    assert.match(blocked.response, /5\.7\.1/);

    const atGreeting = await net.smtp({ tls: 'none', script: { blockSources: ['127.0.0.4'], blockAt: 'connect' } });
    await assert.rejects(connect(atGreeting, { localAddress: '127.0.0.4' }), (err: { responseCode?: number; response?: string }) => err.responseCode === 554 && /5\.7\.1/.test(String(err.response)));
    assert.equal(atGreeting.refusals[0]?.stage, 'connect');
  });

  test('counts concurrent connections per source, limits them per source if asked; slow replies are slow', async () => {
    const mx = await net.smtp({ tls: 'none' });
    const conns = await Promise.all([
      connect(mx, { localAddress: '127.0.0.2' }),
      connect(mx, { localAddress: '127.0.0.2' }),
      connect(mx, { localAddress: '127.0.0.2' }),
      connect(mx, { localAddress: '127.0.0.3' }),
    ]);
    await waitFor(() => mx.openConnections() === 4, 5000, 'four open connections');
    assert.equal(mx.maxConcurrentConnections(), 4);
    assert.equal(mx.maxConcurrentConnections('127.0.0.2'), 3);
    assert.equal(mx.maxConcurrentConnections('127.0.0.3'), 1);
    for (const c of conns) c.close();
    await waitFor(() => mx.openConnections() === 0, 5000, 'all connections closed');
    assert.equal(mx.maxConcurrentConnections(), 4);
    assert.equal(mx.connections('127.0.0.2'), 3);

    // after STARTTLS the TLS socket owns the connection: its close must end the count too
    const tls = await net.smtp({ name: 'mx.count.test' });
    const secured = await Promise.all([connect(tls), connect(tls)]);
    await waitFor(() => tls.openConnections() === 2, 5000, 'two TLS connections');
    secured[0].quit();
    secured[1].close();
    await waitFor(() => tls.openConnections() === 0, 2000, 'both TLS connections counted as closed');

    const limited = await net.smtp({ tls: 'none', script: { maxConnectionsPerSource: 2 } });
    const two = [await connect(limited), await connect(limited)];
    await assert.rejects(connect(limited), (err: { responseCode?: number; response?: string }) => err.responseCode === 421 && /4\.7\.0 Too many/.test(String(err.response)));
    assert.equal((await connect(limited, { localAddress: '127.0.0.3' })).close(), undefined, 'another source still gets in');
    for (const c of two) c.close();
    await waitFor(() => limited.openConnections('127.0.0.2') === 0, 2000, 'the limited connections closed');
    (await connect(limited)).close();
    assert.equal(limited.maxConcurrentConnections('127.0.0.2'), 3, 'the refused third connection was open for its greeting');

    const slow = await net.smtp({ tls: 'none', script: { replyDelayMs: 100 } });
    const conn = await connect(slow);
    const started = Date.now();
    assert.equal((await send(conn, 'a@sender.test', 'x@t.test', message('a@sender.test', 'x@t.test'))).code, 250);
    assert.ok(Date.now() - started >= 300, 'MAIL, RCPT and the end of DATA each waited 100 ms');
    conn.close();
  });
});
