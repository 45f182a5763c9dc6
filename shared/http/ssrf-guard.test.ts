import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SsrfGuard, SsrfRefused } from './ssrf-guard.js';

test('refused ranges, v4 and v6 (v4-mapped too); public addresses pass', () => {
  const g = new SsrfGuard();
  const refused = [
    '10.1.2.3', '172.16.0.1', '192.168.1.1', '127.0.0.1', '169.254.169.254', '100.64.0.1', '224.0.0.1', '0.0.0.0', '255.255.255.255',
    '::1', '::', 'fe80::1', 'fc00::1', 'fd12:3456::1', 'ff02::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1', '::ffff:169.254.169.254',
  ];
  for (const a of refused) assert.notEqual(g.addressProblem(a), null, a);
  for (const a of ['93.184.216.34', '8.8.8.8', '2606:4700:4700::1111', '::ffff:8.8.8.8']) assert.equal(g.addressProblem(a), null, a);
});

test('the allow list: CIDRs, single addresses and host names', () => {
  const g = new SsrfGuard({ allow: ['127.0.0.1', '10.0.0.0/8', 'hooks.internal'] });
  assert.equal(g.addressProblem('127.0.0.1'), null);
  assert.equal(g.addressProblem('::ffff:127.0.0.1'), null);
  assert.notEqual(g.addressProblem('127.0.0.2'), null);
  assert.equal(g.addressProblem('10.9.9.9'), null);
  assert.equal(g.addressProblem('192.168.0.1', 'hooks.internal'), null);
  assert.notEqual(g.addressProblem('192.168.0.1', 'other.internal'), null);
});

test('checkUrl: https only unless allowed, no credentials, every resolved address checked', async () => {
  const dnsTable: Record<string, string[]> = { 'public.example': ['93.184.216.34'], 'mixed.example': ['93.184.216.34', '10.0.0.5'], 'v6.example': ['fe80::1'] };
  const resolve = async (h: string) => dnsTable[h] ?? [];
  const g = new SsrfGuard({ resolve });
  assert.equal((await g.checkUrl('https://public.example/hook')).hostname, 'public.example');
  await assert.rejects(g.checkUrl('http://public.example/hook'), SsrfRefused);
  await assert.rejects(g.checkUrl('https://mixed.example/'), /10\.0\.0\.5/);
  await assert.rejects(g.checkUrl('https://v6.example/'), SsrfRefused);
  await assert.rejects(g.checkUrl('https://[::1]/'), SsrfRefused);
  await assert.rejects(g.checkUrl('https://169.254.169.254/latest/meta-data'), SsrfRefused);
  await assert.rejects(g.checkUrl('https://user:pw@public.example/'), /credentials/);
  await assert.rejects(g.checkUrl('https://nowhere.example/'), /does not resolve/);
  await assert.rejects(g.checkUrl('ftp://public.example/'), SsrfRefused);
  const http = new SsrfGuard({ resolve, allowHttp: true, allow: ['127.0.0.1'] });
  assert.ok(await http.checkUrl('http://127.0.0.1:8080/x'));
});

test('lookup (connect time): a rebinding answer is refused, allowed answers pass through', async () => {
  let answer = ['93.184.216.34'];
  const g = new SsrfGuard({ resolve: async () => answer });
  const look = (host: string) =>
    new Promise<unknown>((resolve, reject) => g.lookup(host, { all: true }, (err, address) => (err ? reject(err) : resolve(address))));
  assert.deepEqual(await look('rebind.example'), [{ address: '93.184.216.34', family: 4 }]);
  answer = ['127.0.0.1'];
  await assert.rejects(look('rebind.example'), SsrfRefused);
});
