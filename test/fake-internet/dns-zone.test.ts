/** How the fake DNS answers from its records, as a table: rcodes, CNAME chains, loops, names. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Zone, reverseName, txtChunks, type RecordType } from '../helpers/fake-internet/dns-zone.js';

test('answers: records, NODATA, NXDOMAIN, empty non-terminals, CNAME chains and loops', () => {
  const zone = new Zone();
  zone.set('Example.TEST.', 'MX', [{ type: 'MX', exchange: 'mx.example.test', priority: 10 }], 60);
  zone.set('mx.example.test', 'CNAME', [{ type: 'CNAME', domain: 'host.example.test' }], 30);
  zone.set('host.example.test', 'A', [{ type: 'A', address: '127.0.0.20' }], 20);
  zone.set('s1._domainkey.example.test', 'TXT', [{ type: 'TXT', data: ['v=DKIM1'] }], 300);
  zone.set('a.loop.test', 'CNAME', [{ type: 'CNAME', domain: 'b.loop.test' }], 30);
  zone.set('b.loop.test', 'CNAME', [{ type: 'CNAME', domain: 'a.loop.test' }], 30);
  zone.set('dangling.test', 'CNAME', [{ type: 'CNAME', domain: 'nowhere.test' }], 30);
  const table: [string, RecordType, string, string[]][] = [
    ['example.test', 'MX', 'NOERROR', ['example.test MX mx.example.test 60']],
    ['EXAMPLE.test.', 'MX', 'NOERROR', ['example.test MX mx.example.test 60']],
    ['example.test', 'A', 'NOERROR', []],
    ['nothing.example.test', 'A', 'NXDOMAIN', []],
    ['_domainkey.example.test', 'TXT', 'NOERROR', []],
    ['mx.example.test', 'A', 'NOERROR', ['mx.example.test CNAME host.example.test 30', 'host.example.test A 127.0.0.20 20']],
    ['mx.example.test', 'CNAME', 'NOERROR', ['mx.example.test CNAME host.example.test 30']],
    ['mx.example.test', 'AAAA', 'NOERROR', ['mx.example.test CNAME host.example.test 30']],
    ['dangling.test', 'A', 'NXDOMAIN', ['dangling.test CNAME nowhere.test 30']],
    ['a.loop.test', 'A', 'SERVFAIL', []],
  ];
  for (const [name, type, rcode, answers] of table) {
    const got = zone.answer(name, type);
    const shown = got.answers.map((r) => `${r.name} ${r.type} ${'exchange' in r ? r.exchange : 'address' in r ? r.address : 'domain' in r ? r.domain : r.data.join('')} ${r.ttl}`);
    assert.deepEqual([got.rcode, shown], [rcode, answers], `${name} ${type}`);
  }
  zone.remove('example.test');
  assert.equal(zone.answer('example.test', 'MX').rcode, 'NOERROR', 'still exists: names below it have records');
  zone.touch('bare.test');
  assert.deepEqual(zone.answer('bare.test', 'A'), { rcode: 'NOERROR', answers: [] });
});

test('reverse names and TXT chunks', () => {
  assert.equal(reverseName('127.0.0.2'), '2.0.0.127.in-addr.arpa');
  assert.equal(reverseName('2001:db8::1'), `1.0.0.0.${'0.'.repeat(20)}8.b.d.0.1.0.0.2.ip6.arpa`);
  assert.deepEqual(txtChunks('x'.repeat(600)).map((c) => c.length), [255, 255, 90]);
  assert.deepEqual(txtChunks(['a', 'b']), ['a', 'b']);
});
