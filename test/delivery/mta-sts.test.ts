/**
 * TLS policy and MTA-STS (RFC 8461) end to end on the fake internet: policies served over
 * HTTPS (`net.mtaSts`: port 443 on a random loopback address, certificates from the harness
 * CA), MX hosts with and without a certificate for their name. Enforce: only MX hosts the policy lists, over verified TLS; testing: delivered
 * anyway, the violation counted; `tls: verify`: a certificate that does not verify → deferred.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { waitFor } from '../helpers/broker.js';
import { startFakeInternet, type FakeInternet, type FakeSmtpServer } from '../helpers/fake-internet/index.js';
import { startHarness, type Harness } from '../dispatcher/dispatcher-harness.js';
import { recordFor } from '../dispatcher/fleet-support.js';

describe('MTA-STS and TLS policy', () => {
  let net: FakeInternet;
  let h: Harness;
  const mx: Record<string, FakeSmtpServer> = {};
  let dir: string;

  before(async () => {
    net = await startFakeInternet();
    // mailauth fetches policies through https' global agent: trust the harness CA in this process
    // (a deployment's CAs are the system's, or NODE_EXTRA_CA_CERTS). net.close() undoes it.
    net.trustInProcess();
    const dns = net.dns;
    // sts.test: a more preferred MX the policy does not list, then the listed one.
    dns.mx('sts.test', [{ exchange: 'mx0.elsewhere.test', priority: 5 }, { exchange: 'mx1.sts.test', priority: 10 }]);
    await net.mtaSts('sts.test', { mode: 'enforce', mx: ['mx1.sts.test'], maxAge: 86400 });
    // testing.test: only an MX host its (testing) policy does not list.
    dns.mx('testing.test', [{ exchange: 'mx0.elsewhere.test', priority: 5 }]);
    await net.mtaSts('testing.test', { mode: 'testing', mx: ['mx1.sts.test'], maxAge: 86400 });
    // enforce policy listing no MX host the domain has.
    dns.mx('nomatch.test', [{ exchange: 'mx0.elsewhere.test', priority: 5 }]);
    await net.mtaSts('nomatch.test', { mode: 'enforce', mx: ['mx.nomatch.test'], maxAge: 86400 });
    dns.a('mx0.elsewhere.test', '127.0.0.25');
    dns.a('mx1.sts.test', '127.0.0.26');
    // verify-mode route: one MX with a certificate for its name, one with a self-signed one.
    dns.mx('good.test', [{ exchange: 'mx1.sts.test', priority: 10 }]);
    dns.mx('selfsigned.test', [{ exchange: 'mx0.elsewhere.test', priority: 10 }]);

    mx.elsewhere = await net.smtp({ host: '127.0.0.25', name: 'mx0.elsewhere.test', selfSigned: true });
    mx.sts = await net.smtp({ host: '127.0.0.26', name: 'mx1.sts.test' });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'postline-routes-'));
    const file = path.join(dir, 'routes.yaml');
    fs.writeFileSync(
      file,
      YAML.stringify({
        dns: { servers: dns.servers, timeoutMs: 500, ttlFloorSeconds: 1, blockLocalAddresses: false, smtpPort: net.smtpPort },
        routes: { direct: { kind: 'mx' }, checked: { kind: 'mx', tls: 'verify', mtaSts: false } },
        pools: {
          default: { route: 'direct', addresses: [{ address: '127.0.0.6', ehlo: 'mta.postline.test' }] },
          checked: { route: 'checked', addresses: [{ address: '127.0.0.6', ehlo: 'mta.postline.test' }] },
        },
        tls: { caFile: net.caFile },
      }),
    );
    h = await startHarness({}, { 'dispatcher.routesFile': file });
  });
  after(async () => {
    await h?.close();
    await net?.close();
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
    assert.equal(net.mtaStsServer?.fetchesFor('sts.test').length, 1, 'policy cached by max_age');
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
