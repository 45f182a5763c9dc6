/** The MX router on its own (real DNS server on loopback, no broker): local-address blocking and route shape. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DnsResolver } from '../../services/dispatcher/routing/dns-resolver.js';
import { MxRouter, isLocalAddress } from '../../services/dispatcher/routing/mx-router.js';
import { unlimitedShaper } from '../../services/dispatcher/shaping/shaper.js';
import { parseRoutingFile } from '../../services/dispatcher/routing/routes-file.js';
import { startFakeInternet, type FakeDns, type FakeInternet } from '../helpers/fake-internet/index.js';

describe('MxRouter', () => {
  let net: FakeInternet;
  let dns: FakeDns;
  const msg = (domain: string) => ({ domain, tenant: 't', priority: 'transactional' as const });
  const router = (blockLocalAddresses: boolean) => {
    const file = parseRoutingFile(
      {
        dns: { servers: dns.servers, blockLocalAddresses, smtpPort: 2525 },
        routes: { direct: { kind: 'mx', tls: 'required', mtaSts: false } },
        pools: { default: { route: 'direct', addresses: [{ address: '127.0.0.2', ehlo: 'mta.test' }] } },
      },
      'test',
    );
    return new MxRouter({ file, resolver: new DnsResolver({ servers: dns.servers, timeoutMs: 1000, ttlFloorSeconds: 1, ttlCeilingSeconds: 60 }), shaper: unlimitedShaper });
  };

  before(async () => {
    net = await startFakeInternet();
    dns = net.dns;
    dns.mx('local.test', [{ exchange: 'mx.local.test', priority: 10 }, { exchange: 'mx2.local.test', priority: 20 }]);
    dns.a('mx.local.test', '127.0.0.40');
    dns.a('mx2.local.test', '10.1.2.3');
    dns.mx('mixed.test', [{ exchange: 'mx.local.test', priority: 10 }, { exchange: 'mx.public.test', priority: 20 }]);
    dns.a('mx.public.test', '203.0.113.9');
  });
  after(() => net.close());

  test('addresses: loopback, private, link-local, CGNAT, IPv6 local are local; public ones are not', () => {
    for (const a of ['127.0.0.1', '10.0.0.1', '172.20.1.1', '192.168.1.1', '169.254.1.1', '100.64.0.1', '0.0.0.0', '::1', 'fe80::1', 'fd00::1', '::ffff:127.0.0.1']) assert.equal(isLocalAddress(a), true, a);
    for (const a of ['203.0.113.9', '8.8.8.8', '2001:db8::1', '172.32.0.1']) assert.equal(isLocalAddress(a), false, a);
  });

  test('blockLocalAddresses: MX hosts on local addresses are not used; none left → bounced (dns)', async () => {
    const blocked = await router(true).route(msg('local.test'));
    assert.ok('refusal' in blocked);
    assert.equal(blocked.refusal.kind, 'bounced');
    assert.equal(blocked.refusal.code, 'DNS_NO_ADDRESS');
    assert.equal(blocked.refusal.category, 'dns');
    assert.match(blocked.refusal.reason, /only local addresses/);
    const mixed = await router(true).route(msg('mixed.test'));
    assert.ok('route' in mixed);
    assert.deepEqual(mixed.route.hosts.map((h) => h.host), ['203.0.113.9']);
  });

  test('a route: hosts by preference at their addresses, SNI name, source address, EHLO, port, TLS policy, site', async () => {
    const r = await router(false).route(msg('local.test'));
    assert.ok('route' in r);
    assert.equal(r.route.site, 'local.test');
    assert.equal(r.route.source, '127.0.0.2');
    assert.deepEqual(
      r.route.hosts.map((h) => [h.host, h.servername, h.port, h.localAddress, h.clientName, h.tlsRequired, h.tlsRejectUnauthorized]),
      [
        ['127.0.0.40', 'mx.local.test', 2525, '127.0.0.2', 'mta.test', true, false],
        ['10.1.2.3', 'mx2.local.test', 2525, '127.0.0.2', 'mta.test', true, false],
      ],
    );
    assert.deepEqual(r.route.hosts[0].shaping, { source: '127.0.0.2', site: 'local.test', domain: 'local.test' });
  });
});
