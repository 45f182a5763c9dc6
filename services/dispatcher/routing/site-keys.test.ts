/**
 * SiteKeys against the fake internet's DNS: a domain whose lookup fails or is slow is keyed by
 * its name, and keyed so without asking or waiting again for the hold time.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeInternet, type FakeInternet } from '../../../test/helpers/fake-internet/index.js';
import { DnsResolver } from './dns-resolver.js';
import { SiteKeys, type KeyedDomain } from './site-keys.js';

describe('site keys: failures held', () => {
  let net: FakeInternet;
  before(async () => {
    net = await startFakeInternet();
  });
  after(() => net.close());

  test('a failed lookup keys by domain and is not asked again until the hold is over; then the site', async () => {
    net.dns.mx('flaky.test', [{ exchange: 'mx1.flaky-hosting.test', priority: 10 }]);
    net.dns.behave('flaky.test', 'servfail');
    let clock = 1_000_000;
    const resolver = new DnsResolver({ servers: net.dns.servers, timeoutMs: 2000, ttlFloorSeconds: 60, ttlCeilingSeconds: 3600 });
    const keys = new SiteKeys({ resolver, failureHoldMs: 30_000, now: () => clock });
    const seen: KeyedDomain[] = [];
    keys.on('keyed', (k: KeyedDomain) => seen.push(k));
    const queries = () => net.dns.queriesFor('flaky.test', 'MX').length;

    assert.equal((await keys.keysFor(['flaky.test'], 'm1')).get('flaky.test'), 'flaky.test');
    assert.equal(queries(), 1);
    net.dns.behave('flaky.test', null);
    clock += 29_000;
    assert.equal((await keys.keysFor(['flaky.test'], 'm2')).get('flaky.test'), 'flaky.test');
    assert.equal(queries(), 1, 'held: not asked again');
    clock += 2_000;
    assert.equal((await keys.keysFor(['flaky.test'], 'm3')).get('flaky.test'), 'flaky-hosting.test');
    assert.equal(queries(), 2);
    assert.deepEqual(seen.map((k) => k.outcome), ['dns-failed', 'dns-failed', 'site']);
  });

  test('a silent DNS server costs the first message the wait, the next ones none', async () => {
    net.dns.mx('silent.test', [{ exchange: 'mx1.silent.test', priority: 10 }]);
    net.dns.behave('silent.test', 'timeout');
    const resolver = new DnsResolver({ servers: net.dns.servers, timeoutMs: 10_000, ttlFloorSeconds: 60, ttlCeilingSeconds: 3600 });
    const keys = new SiteKeys({ resolver, maxWaitMs: 1000 });
    let started = performance.now();
    assert.deepEqual(await keys.resolve('silent.test'), { domain: 'silent.test', outcome: 'timeout', site: 'silent.test' });
    assert.ok(performance.now() - started >= 990, 'waited for the answer up to maxWaitMs');
    started = performance.now();
    assert.deepEqual(await keys.resolve('silent.test'), { domain: 'silent.test', outcome: 'timeout', site: 'silent.test' });
    assert.ok(performance.now() - started < 500, `held: answered in ${Math.round(performance.now() - started)} ms`);
  });
});
