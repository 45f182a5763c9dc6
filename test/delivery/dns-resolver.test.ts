/** The MX/A resolver against a real DNS server on loopback: answers, TTL cache, hostile replies. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DnsPermanentError, DnsResolver, DnsTempError } from '../../services/dispatcher/routing/dns-resolver.js';
import { planMx } from '../../services/dispatcher/routing/mx-plan.js';
import { startFakeInternet, type FakeDns, type FakeInternet } from '../helpers/fake-internet/index.js';

describe('DnsResolver', () => {
  let net: FakeInternet;
  let dns: FakeDns;
  let clock = 1_000_000;
  const resolver = (over: Partial<ConstructorParameters<typeof DnsResolver>[0]> = {}) =>
    new DnsResolver({ servers: dns.servers, timeoutMs: 300, ttlFloorSeconds: 5, ttlCeilingSeconds: 3600, now: () => clock, ...over });

  before(async () => {
    net = await startFakeInternet();
    dns = net.dns;
    dns.mx('example.test', [
      { exchange: 'mx2.example.test', priority: 20 },
      { exchange: 'mx1.example.test', priority: 10 },
    ], { ttl: 60 });
    dns.a('mx1.example.test', '127.0.0.20');
    dns.a('noMx.test', '127.0.0.21');
    dns.nullMx('null.test');
    dns.behave('servfail.test', 'servfail');
    dns.behave('refused.test', 'refused');
    dns.behave('silent.test', 'timeout');
    dns.behave('garbage.test', 'malformed');
    dns.mx('many.test', Array.from({ length: 100 }, (_, i) => ({ exchange: `mx${i}.many.test`, priority: 100 - i })));
    dns.mx('trunc.test', [{ exchange: 'mx.trunc.test', priority: 5 }]);
    dns.behave('trunc.test', 'truncate');
    dns.cname('alias.test', 'chain.test');
    dns.cname('chain.test', 'mx1.example.test');
    dns.cname('loop1.test', 'loop2.test');
    dns.cname('loop2.test', 'loop1.test');
  });
  after(() => net.close());

  test('MX records by preference; one query per TTL, concurrent lookups share it', async () => {
    const r = resolver();
    const answers = await Promise.all(Array.from({ length: 20 }, () => r.mx('example.test')));
    assert.equal(dns.queriesFor('example.test', 'MX').length, 1);
    const plan = planMx('example.test', answers[0], { maxHosts: 10 });
    assert.deepEqual(plan.kind === 'hosts' && plan.hosts.map((h) => h.name), ['mx1.example.test', 'mx2.example.test']);
    await r.mx('example.test');
    assert.equal(dns.queriesFor('example.test', 'MX').length, 1, 'cached');
    clock += 61_000;
    await r.mx('example.test');
    assert.equal(dns.queriesFor('example.test', 'MX').length, 2, 'asked again after the TTL');
  });

  test('no MX → implicit MX (A fallback); null MX and NXDOMAIN → no mail', async () => {
    const r = resolver();
    assert.deepEqual(await r.mx('nomx.test'), { kind: 'none' });
    assert.deepEqual(await r.addresses('nomx.test', 'A'), ['127.0.0.21']);
    const nul = planMx('null.test', await r.mx('null.test'), { maxHosts: 10 });
    assert.equal(nul.kind === 'no-mail' && nul.code, 'DNS_NULL_MX');
    const nx = planMx('nowhere.test', await r.mx('nowhere.test'), { maxHosts: 10 });
    assert.equal(nx.kind === 'no-mail' && nx.code, 'DNS_NXDOMAIN');
    // Negative answers are cached too (for the floor).
    await r.mx('nowhere.test');
    assert.equal(dns.queriesFor('nowhere.test', 'MX').length, 1);
  });

  test('SERVFAIL, REFUSED, silence and garbage are temporary failures, bounded by the timeout', async () => {
    const r = resolver();
    for (const name of ['servfail.test', 'refused.test', 'silent.test', 'garbage.test']) {
      const started = Date.now();
      await assert.rejects(r.mx(name), (err: unknown) => err instanceof DnsTempError && err.code === 'DNS_TEMPFAIL' && err.retriable, name);
      assert.ok(Date.now() - started < 2000, `${name} took ${Date.now() - started} ms`);
    }
  });

  test('a second server answers when the first does not', async () => {
    const r = resolver({ servers: ['127.0.0.1:1', ...dns.servers] });
    assert.equal((await r.mx('example.test')).kind, 'records');
  });

  test('a truncated UDP answer is asked again over TCP; 100 MX records are capped', async () => {
    // Time enough for a UDP try and a TCP one carrying 100 records on a busy machine.
    const r = resolver({ timeoutMs: 3000 });
    const trunc = await r.mx('trunc.test');
    assert.deepEqual(trunc, { kind: 'records', records: [{ exchange: 'mx.trunc.test', priority: 5 }] });
    assert.ok(dns.queries.some((q) => q.name === 'trunc.test' && q.transport === 'tcp'));
    const many = planMx('many.test', await r.mx('many.test'), { maxHosts: 10 });
    assert.equal(many.kind, 'hosts');
    assert.deepEqual(many.kind === 'hosts' && many.hosts.map((h) => h.preference), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  test('CNAME chains are followed; a loop (SERVFAIL from a recursive resolver) is a temporary failure', async () => {
    const r = resolver();
    assert.deepEqual(await r.addresses('alias.test', 'A'), ['127.0.0.20']);
    await assert.rejects(r.addresses('loop1.test', 'A'), (err: unknown) => err instanceof DnsTempError && err.code === 'DNS_TEMPFAIL');
  });
});

describe('DnsResolver cache bound', () => {
  test('at most maxEntries answers are kept; the oldest goes first', async () => {
    const net = await startFakeInternet();
    const dns = net.dns;
    try {
      for (const d of ['a.test', 'b.test', 'c.test']) dns.mx(d, [{ exchange: `mx.${d}`, priority: 10 }]);
      const r = new DnsResolver({ servers: dns.servers, timeoutMs: 1000, ttlFloorSeconds: 60, ttlCeilingSeconds: 3600, maxEntries: 2 });
      await r.mx('a.test');
      await r.mx('b.test');
      await r.mx('c.test');
      await r.mx('c.test');
      await r.mx('b.test');
      assert.equal(dns.queriesFor('b.test', 'MX').length + dns.queriesFor('c.test', 'MX').length, 2, 'b and c still cached');
      await r.mx('a.test');
      assert.equal(dns.queriesFor('a.test', 'MX').length, 2, 'a was evicted');
    } finally {
      await net.close();
    }
  });
});
