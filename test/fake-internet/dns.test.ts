/**
 * The fake internet's DNS server, asked by real clients: Node's resolver (c-ares, which falls
 * back to TCP on a truncated answer) and dns2's UDP client (which shows rcodes and TTLs).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Packet, UDPClient } from 'dns2';
import { startFakeDns, type FakeDns } from '../helpers/fake-internet/dns-server.js';

describe('fake DNS', () => {
  let dns!: FakeDns;
  let ask!: ReturnType<typeof UDPClient>;
  before(async () => {
    dns = await startFakeDns();
    ask = UDPClient({ dns: '127.0.0.1', port: dns.port, retryOverTCP: false, timeout: 2000 });
  });
  after(() => dns.close());

  const errorCode = async (p: Promise<unknown>): Promise<string> => {
    const err = await p.then(
      () => assert.fail('expected a DNS error'),
      (e: NodeJS.ErrnoException) => e,
    );
    return String(err.code);
  };

  test('serves MX, A, AAAA, TXT, CNAME, PTR and null MX to a Node resolver', async () => {
    dns.mx('example.test', [
      { exchange: 'mx1.example.test', priority: 10 },
      { exchange: 'mx2.example.test', priority: 20 },
    ]);
    dns.a('mx1.example.test', ['127.0.0.20', '127.0.0.21']);
    dns.aaaa('mx1.example.test', '::1');
    const key = `v=DKIM1; k=rsa; p=${'A'.repeat(400)}`;
    dns.txt('s1._domainkey.example.test', key);
    dns.txt('example.test', ['v=spf1 ip4:127.0.0.2 -all', 'site-verification=abc']);
    dns.cname('www.example.test', 'mx1.example.test');
    dns.ptr('127.0.0.2', 'mta2.example.test');
    dns.nullMx('nomail.test');
    const r = dns.nodeResolver();
    assert.deepEqual(
      (await r.resolveMx('example.test')).sort((a, b) => a.priority - b.priority),
      [
        { exchange: 'mx1.example.test', priority: 10 },
        { exchange: 'mx2.example.test', priority: 20 },
      ],
    );
    assert.deepEqual((await r.resolve4('mx1.example.test')).sort(), ['127.0.0.20', '127.0.0.21']);
    assert.deepEqual(await r.resolve6('mx1.example.test'), ['::1']);
    const dkim = await r.resolveTxt('s1._domainkey.example.test');
    assert.equal(dkim.length, 1);
    assert.ok(dkim[0].length > 1, 'a long TXT value is split into 255-byte strings');
    assert.equal(dkim[0].join(''), key);
    assert.deepEqual((await r.resolveTxt('example.test')).map((c) => c.join('')).sort(), ['site-verification=abc', 'v=spf1 ip4:127.0.0.2 -all']);
    assert.deepEqual(await r.resolveCname('www.example.test'), ['mx1.example.test']);
    assert.deepEqual((await r.resolve4('www.example.test')).sort(), ['127.0.0.20', '127.0.0.21'], 'A through a CNAME');
    assert.deepEqual(await r.reverse('127.0.0.2'), ['mta2.example.test']);
    assert.deepEqual(await r.resolveMx('nomail.test'), [{ exchange: '', priority: 0 }]);
    // the resolve-function adapters (mailauth's resolver, mx-connect's dnsOptions.resolve)
    assert.deepEqual(await dns.resolver()('mx2.example.test', 'A').catch((e: NodeJS.ErrnoException) => e.code), 'ENOTFOUND');
    const viaCallback = await new Promise((resolve, reject) => dns.callbackResolver()('www.example.test', 'CNAME', (err, rec) => (err ? reject(err) : resolve(rec))));
    assert.deepEqual(viaCallback, ['mx1.example.test']);
  });

  test('TTLs per record set; NXDOMAIN for unknown names, NODATA for known names without the type', async () => {
    dns.mx('ttl.test', [{ exchange: 'mx.ttl.test', priority: 5 }], { ttl: 42 });
    dns.a('mx.ttl.test', '127.0.0.22', { ttl: 7 });
    const mx = await ask('ttl.test', 'MX');
    assert.equal(mx.header.rcode, 0);
    assert.deepEqual(
      mx.answers.map((a) => [a.ttl, (a as unknown as { exchange: string }).exchange]),
      [[42, 'mx.ttl.test']],
    );
    assert.equal((await ask('mx.ttl.test', 'A')).answers[0].ttl, 7);
    const nodata = await ask('mx.ttl.test', 'AAAA');
    assert.equal(nodata.header.rcode, 0);
    assert.equal(nodata.answers.length, 0);
    assert.equal((await ask('unknown.ttl.test', 'A')).header.rcode, 3);
    dns.txt('sel._domainkey.ttl.test', 'v=DKIM1; p=');
    assert.equal((await ask('_domainkey.ttl.test', 'TXT')).header.rcode, 0, 'a name with records below it exists (NODATA)');
    assert.equal((await ask('ttl.test', 'MX')).answers.length, 1);
    const r = dns.nodeResolver();
    assert.equal(await errorCode(r.resolve6('mx.ttl.test')), 'ENODATA');
    assert.equal(await errorCode(r.resolveMx('unknown.ttl.test')), 'ENOTFOUND');
    dns.exists('bare.ttl.test');
    assert.equal(await errorCode(r.resolveMx('bare.ttl.test')), 'ENODATA', 'a name made to exist without records');
    assert.equal(dns.queriesFor('ttl.test', 'MX').length, 2, 'the query log counts lookups');
  });

  test('hostile names: SERVFAIL, REFUSED, forced NXDOMAIN, timeout, malformed bytes — per name and per type', async () => {
    dns.a('bad.test', '127.0.0.23');
    const r = dns.nodeResolver({ timeoutMs: 150, tries: 1 });
    dns.behave('bad.test', 'servfail');
    assert.equal(await errorCode(r.resolve4('bad.test')), 'ESERVFAIL');
    dns.behave('bad.test', 'refused');
    assert.equal(await errorCode(r.resolve4('bad.test')), 'EREFUSED');
    dns.behave('bad.test', 'nxdomain');
    assert.equal(await errorCode(r.resolve4('bad.test')), 'ENOTFOUND');
    dns.behave('bad.test', 'malformed');
    assert.equal(await errorCode(r.resolve4('bad.test')), 'EBADRESP');
    dns.behave('bad.test', 'timeout');
    const started = Date.now();
    assert.equal(await errorCode(r.resolve4('bad.test')), 'ETIMEOUT');
    assert.ok(Date.now() - started >= 140);
    assert.equal(dns.queriesFor('bad.test').at(-1)?.outcome, 'timeout');
    dns.behave('bad.test', null);
    dns.behave('bad.test', 'servfail', { type: 'MX' });
    assert.deepEqual(await r.resolve4('bad.test'), ['127.0.0.23'], 'a per-type behaviour leaves other types alone');
    assert.equal(await errorCode(r.resolveMx('bad.test')), 'ESERVFAIL');
    assert.equal((await ask('bad.test', 'MX')).header.rcode, 2);
  });

  test('truncate: TC bit over UDP, the full answer over TCP', async () => {
    dns.mx('tc.test', [{ exchange: 'mx.tc.test', priority: 10 }]);
    dns.behave('tc.test', 'truncate');
    const udp = await ask('tc.test', 'MX');
    assert.equal(udp.header.tc, 1);
    assert.equal(udp.answers.length, 0);
    assert.deepEqual(await dns.nodeResolver().resolveMx('tc.test'), [{ exchange: 'mx.tc.test', priority: 10 }]);
    const log = dns.queriesFor('tc.test', 'MX').map((q) => `${q.transport} ${q.outcome}`);
    assert.equal(log[0], 'udp truncated');
    assert.equal(log.at(-1), 'tcp NOERROR', 'the client asked again over TCP and got the records');
  });

  test('an MX at a CNAME, an MX at a name with no address, a CNAME loop, 100 MX records', async () => {
    const r = dns.nodeResolver({ timeoutMs: 1000, tries: 1 });
    dns.mx('alias.test', [{ exchange: 'mx-alias.alias.test', priority: 10 }]);
    dns.cname('mx-alias.alias.test', 'real.alias.test');
    dns.a('real.alias.test', '127.0.0.24');
    assert.deepEqual(await r.resolve4('mx-alias.alias.test'), ['127.0.0.24']);
    const viaCname = await ask('mx-alias.alias.test', 'A');
    assert.deepEqual(
      viaCname.answers.map((a) => a.type),
      [Packet.TYPE.CNAME, Packet.TYPE.A],
      'the answer carries the CNAME and its target',
    );

    dns.mx('void.test', [{ exchange: 'nothing.void.test', priority: 10 }]);
    assert.deepEqual(await r.resolveMx('void.test'), [{ exchange: 'nothing.void.test', priority: 10 }]);
    assert.equal(await errorCode(r.resolve4('nothing.void.test')), 'ENOTFOUND');

    dns.mx('loop.test', [{ exchange: 'a.loop.test', priority: 10 }]);
    dns.cname('a.loop.test', 'b.loop.test');
    dns.cname('b.loop.test', 'a.loop.test');
    assert.equal(await errorCode(r.resolve4('a.loop.test')), 'ESERVFAIL');

    const many = Array.from({ length: 100 }, (_, i) => ({ exchange: `mx${i}.many.test`, priority: i }));
    dns.mx('many.test', many);
    const got = await r.resolveMx('many.test');
    assert.equal(got.length, 100);
    assert.deepEqual(new Set(got.map((m) => m.exchange)), new Set(many.map((m) => m.exchange)));
    assert.ok(
      dns.queriesFor('many.test', 'MX').some((q) => q.transport === 'tcp'),
      '100 MX records do not fit a UDP answer: the client had to ask again over TCP',
    );
  });
});
