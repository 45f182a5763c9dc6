/**
 * The fake internet's certificate authority and MTA-STS policies: mailauth's `getPolicy` (DNS
 * through the fake resolver, HTTPS to 127.0.0.x:443 with `rejectUnauthorized: true` through the
 * global agent) finds the published policy once the CA is trusted in-process, and not before; a
 * child process trusts it through `NODE_EXTRA_CA_CERTS`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { getPolicy, validateMx } from 'mailauth/lib/mta-sts.js';
import { startFakeInternet, type FakeInternet } from '../helpers/fake-internet/index.js';

const run = promisify(execFile);

describe('fake MTA-STS and certificates', () => {
  let net!: FakeInternet;
  before(async () => {
    net = await startFakeInternet();
  });
  after(() => net.close());

  test('getPolicy fetches the published policy over HTTPS once the CA is trusted in-process', async () => {
    const resolver = net.dns.resolver();
    const published = await net.mtaSts('sts.test', { mode: 'enforce', mx: ['mx1.sts.test', '*.backup.sts.test'], maxAge: 86400 });
    const server = net.mtaStsServer!;
    assert.match(server.address, /^127\.0\.0\.\d+$/);
    assert.deepEqual(await net.dns.nodeResolver().resolve4('mta-sts.sts.test'), [server.address]);
    assert.deepEqual(await net.dns.nodeResolver().resolveTxt('_mta-sts.sts.test'), [[`v=STSv1; id=${published.id};`]]);

    const untrusted = await getPolicy('sts.test', undefined, { resolver: resolver as never });
    assert.equal(untrusted.status, 'errored', 'without the CA the certificate does not verify');
    assert.match(String((untrusted.policy as { error?: Error }).error?.message), /certificate/i);

    const undo = net.trustInProcess();
    try {
      const found = await getPolicy('sts.test', undefined, { resolver: resolver as never });
      assert.equal(found.status, 'found');
      assert.equal(found.policy.id, published.id);
      assert.equal(found.policy.mode, 'enforce');
      assert.deepEqual(found.policy.mx, ['mx1.sts.test', '*.backup.sts.test']);
      assert.equal(found.policy.maxAge, 86400);
      assert.equal(validateMx('mx1.sts.test', found.policy).valid, true);
      assert.equal(validateMx('mx2.backup.sts.test', found.policy).valid, true);
      assert.equal(validateMx('mx.elsewhere.test', found.policy).valid, false);
      assert.equal(server.fetchesFor('sts.test').length, 1, 'the refused handshake never got to a request');

      // a republished policy gets a new id; a domain can serve an error instead
      const changed = await net.mtaSts('sts.test', { mode: 'testing', mx: ['mx1.sts.test'], maxAge: 600 });
      assert.notEqual(changed.id, published.id);
      const renewed = await getPolicy('sts.test', found.policy, { resolver: resolver as never });
      assert.equal(renewed.status, 'found');
      assert.equal(renewed.policy.mode, 'testing');
      await net.mtaSts('gone.test', { mode: 'enforce', mx: ['mx.gone.test'], maxAge: 600 }, { status: 404 });
      assert.equal((await getPolicy('gone.test', undefined, { resolver: resolver as never })).status, 'errored');
      assert.equal((await getPolicy('nopolicy.test', undefined, { resolver: resolver as never })).status, 'not_found');
    } finally {
      undo();
    }
    const again = await getPolicy('sts.test', undefined, { resolver: resolver as never });
    assert.equal(again.status, 'errored', 'undoing the trust restores the global agent');
  });

  test('a child process trusts the CA through NODE_EXTRA_CA_CERTS', async () => {
    await net.mtaSts('child.test', { mode: 'enforce', mx: ['mx.child.test'], maxAge: 3600 });
    const address = net.mtaStsServer!.address;
    const script = `
      const https = require('node:https');
      https.get({ host: '${address}', port: 443, servername: 'mta-sts.child.test', headers: { host: 'mta-sts.child.test' }, path: '/.well-known/mta-sts.txt' }, (res) => {
        let body = ''; res.on('data', (c) => (body += c)); res.on('end', () => console.log(res.statusCode, JSON.stringify(body)));
      }).on('error', (e) => { console.log('ERROR', e.code); });`;
    const withCa = await run(process.execPath, ['-e', script], { env: { ...process.env, ...net.childEnv() } });
    assert.equal(withCa.stdout.trim(), `200 ${JSON.stringify('version: STSv1\r\nmode: enforce\r\nmx: mx.child.test\r\nmax_age: 3600\r\n')}`);
    const env = { ...process.env };
    delete env.NODE_EXTRA_CA_CERTS;
    const without = await run(process.execPath, ['-e', script], { env });
    assert.match(without.stdout, /^ERROR (UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)/);
  });

  test('without the right to bind port 443, mtaSts() throws a clear error (never a silent skip)', { skip: process.getuid?.() !== 0 && 'dropping privileges needs root' }, async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'postline-nobody-'));
    try {
      const harness = fileURLToPath(new URL('../helpers/fake-internet/index.ts', import.meta.url));
      const script = path.join(dir, 'bind-443.mts');
      await writeFile(
        script,
        `import { startFakeInternet } from ${JSON.stringify(harness)};
         const net = await startFakeInternet();
         try { await net.mtaSts('x.test', { mode: 'enforce', mx: ['mx.x.test'], maxAge: 60 }); console.log('BOUND'); }
         catch (e) { console.log('ERROR ' + e.message); }
         finally { await net.close(); }`,
      );
      await chmod(dir, 0o755);
      await chmod(script, 0o644);
      const { stdout } = await run(process.execPath, ['--import', 'tsx', script], { uid: 65534, gid: 65534, cwd: process.cwd(), env: { ...process.env, HOME: dir } });
      assert.match(stdout, /^ERROR fake internet: cannot listen on 127\.0\.0\.x:443 .*EACCES.*run the tests as root or give node CAP_NET_BIND_SERVICE/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
