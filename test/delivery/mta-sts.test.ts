/**
 * TLS policy and MTA-STS (RFC 8461) end to end: a policy served over HTTPS (port 443 on a
 * loopback address, certificate from a test CA), MX hosts with and without a certificate for
 * their name. Enforce: only MX hosts the policy lists, over verified TLS; testing: delivered
 * anyway, the violation counted; `tls: verify`: a certificate that does not verify → deferred.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import YAML from 'yaml';
import { waitFor } from '../helpers/broker.js';
import { freePort } from '../helpers/free-port.js';
import { startHarness, type Harness } from '../dispatcher/dispatcher-harness.js';
import { recordFor } from '../dispatcher/fleet-support.js';
import { startLocalDns, type LocalDns } from './local-dns.js';
import { startLocalMx, type LocalMx } from './local-mx.js';
import { makeTestPki, type TestPki } from './test-certs.js';

const WEB = '127.0.0.213';

describe('MTA-STS and TLS policy', () => {
  let dns: LocalDns;
  let h: Harness;
  let pki: TestPki;
  let web: https.Server;
  const policyRequests: string[] = [];
  const mx: Record<string, LocalMx> = {};
  let dir: string;
  const agentCa = https.globalAgent.options.ca;

  before(async () => {
    pki = makeTestPki();
    // mailauth fetches policies through https' global agent: trust the test CA in this process
    // (a deployment's CAs are the system's, or NODE_EXTRA_CA_CERTS).
    https.globalAgent.options.ca = pki.caPem;
    const policies: Record<string, string> = {
      'mta-sts.sts.test': 'version: STSv1\nmode: enforce\nmx: mx1.sts.test\nmax_age: 86400\n',
      'mta-sts.testing.test': 'version: STSv1\nmode: testing\nmx: mx1.sts.test\nmax_age: 86400\n',
    };
    const webCert = pki.issue('mta-sts.sts.test');
    const certs = new Map(['mta-sts.testing.test', 'mta-sts.nomatch.test'].map((name) => [name, tls.createSecureContext(pki.issue(name))]));
    web = https.createServer({ ...webCert, SNICallback: (name, cb) => cb(null, certs.get(name) ?? tls.createSecureContext(webCert)) }, (req, res) => {
      const host = String(req.headers.host);
      policyRequests.push(host);
      if (req.url !== '/.well-known/mta-sts.txt' || !policies[host]) return res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'text/plain' }).end(policies[host]);
    });
    await new Promise<void>((resolve, reject) => {
      web.once('error', reject);
      web.listen(443, WEB, () => resolve());
    });

    dns = await startLocalDns();
    const port = await freePort();
    // sts.test: a more preferred MX the policy does not list, then the listed one.
    dns.mx('sts.test', [{ exchange: 'mx0.elsewhere.test', priority: 5 }, { exchange: 'mx1.sts.test', priority: 10 }]);
    dns.txt('_mta-sts.sts.test', 'v=STSv1; id=20261203T000000');
    dns.a('mta-sts.sts.test', WEB);
    // testing.test: only an MX host its (testing) policy does not list.
    dns.mx('testing.test', [{ exchange: 'mx0.elsewhere.test', priority: 5 }]);
    dns.txt('_mta-sts.testing.test', 'v=STSv1; id=1');
    dns.a('mta-sts.testing.test', WEB);
    // enforce policy listing no MX host the domain has.
    dns.mx('nomatch.test', [{ exchange: 'mx0.elsewhere.test', priority: 5 }]);
    dns.txt('_mta-sts.nomatch.test', 'v=STSv1; id=1');
    dns.a('mta-sts.nomatch.test', WEB);
    policies['mta-sts.nomatch.test'] = 'version: STSv1\nmode: enforce\nmx: mx.nomatch.test\nmax_age: 86400\n';
    dns.a('mx0.elsewhere.test', '127.0.0.25');
    dns.a('mx1.sts.test', '127.0.0.26');
    // verify-mode route: one MX with a certificate for its name, one with smtp-server's self-signed one.
    dns.mx('good.test', [{ exchange: 'mx1.sts.test', priority: 10 }]);
    dns.mx('selfsigned.test', [{ exchange: 'mx0.elsewhere.test', priority: 10 }]);

    mx.elsewhere = await startLocalMx({ host: '127.0.0.25', port });
    mx.sts = await startLocalMx({ host: '127.0.0.26', port, ...pki.issue('mx1.sts.test') });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'postline-routes-'));
    const file = path.join(dir, 'routes.yaml');
    fs.writeFileSync(
      file,
      YAML.stringify({
        dns: { servers: dns.servers, timeoutMs: 500, ttlFloorSeconds: 1, blockLocalAddresses: false, smtpPort: port },
        routes: { direct: { kind: 'mx' }, checked: { kind: 'mx', tls: 'verify', mtaSts: false } },
        pools: {
          default: { route: 'direct', addresses: [{ address: '127.0.0.6', ehlo: 'mta.postline.test' }] },
          checked: { route: 'checked', addresses: [{ address: '127.0.0.6', ehlo: 'mta.postline.test' }] },
        },
        tls: { caFile: pki.caFile },
      }),
    );
    h = await startHarness({}, { 'dispatcher.routesFile': file });
  });
  after(async () => {
    await h?.close();
    for (const m of Object.values(mx)) await m.close();
    await dns?.close();
    await new Promise<void>((resolve) => (web ? web.close(() => resolve()) : resolve()));
    https.globalAgent.options.ca = agentCa;
    pki?.remove();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const outcome = (messageId: string) => waitFor(() => h.events().find((e) => e.messageId === messageId && e.type !== 'accepted'), 20_000, `an outcome of ${messageId}`);

  test('enforce: the MX host the policy does not list is not used; the listed one over verified TLS; the policy is fetched once', async () => {
    const rs = [recordFor(['ann@sts.test']), recordFor(['bob@sts.test'])];
    await h.produce([rs[0]]);
    await outcome(rs[0].messageId);
    await h.produce([rs[1]]);
    const got = await Promise.all(rs.map((r) => outcome(r.messageId)));
    for (const e of got) {
      assert.equal(e.type, 'sent', JSON.stringify(e));
      assert.match(e.tls ?? '', /^TLSv1\.[23]$/);
    }
    assert.equal(mx.sts.messages.filter((m) => m.to[0].endsWith('@sts.test')).length, 2);
    assert.equal(mx.elsewhere.messages.filter((m) => m.to[0].endsWith('@sts.test')).length, 0, 'the unlisted (more preferred) MX got nothing');
    assert.equal(policyRequests.filter((x) => x === 'mta-sts.sts.test').length, 1, 'policy cached by max_age');
    assert.ok((await h.metric('postline_mta_sts_violations_total', 'mode="enforce"')) >= 1);
  });

  test('enforce with no listed MX host → deferred (MTA_STS_NO_VALID_MX)', async () => {
    const r = recordFor(['cat@nomatch.test']);
    await h.produce([r]);
    const e = await outcome(r.messageId);
    assert.equal(e.type, 'deferred');
    assert.match(e.reason ?? '', /^MTA_STS_NO_VALID_MX/);
    assert.ok(!mx.elsewhere.messages.some((m) => m.to.includes('cat@nomatch.test')));
  });

  test('testing: delivered to the unlisted MX host anyway, the violation counted', async () => {
    const r = recordFor(['dan@testing.test']);
    await h.produce([r]);
    assert.equal((await outcome(r.messageId)).type, 'sent');
    assert.ok(mx.elsewhere.messages.some((m) => m.to.includes('dan@testing.test')));
    assert.ok((await h.metric('postline_mta_sts_violations_total', 'mode="testing"')) >= 1);
  });

  test('tls: verify — a certificate valid for the MX host name is accepted, a self-signed one is not (deferred)', async () => {
    const good = recordFor(['eve@good.test'], { pool: 'checked' });
    const bad = recordFor(['fay@selfsigned.test'], { pool: 'checked' });
    await h.produce([good, bad]);
    const [g, b] = await Promise.all([outcome(good.messageId), outcome(bad.messageId)]);
    assert.equal(g.type, 'sent', JSON.stringify(g));
    assert.match(g.tls ?? '', /^TLSv1\.[23]$/);
    assert.equal(b.type, 'deferred', JSON.stringify(b));
    assert.ok(!mx.elsewhere.messages.some((m) => m.to.includes('fay@selfsigned.test')));
  });
});
