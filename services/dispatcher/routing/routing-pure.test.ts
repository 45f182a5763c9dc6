/** Table tests of the pure routing decisions: sites, MX plans, pools. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { siteOf, siteOfHosts } from './sites.js';
import { planMx } from './mx-plan.js';
import { choosePool, chooseSource } from './pools.js';

describe('siteOf', () => {
  const cases: Array<[string, string, Record<string, string>?]> = [
    ['gmail-smtp-in.l.google.com', 'gmail'],
    ['ALT1.ASPMX.L.GOOGLE.COM.', 'gmail'],
    ['mx.googlemail.com', 'gmail'],
    ['acme-com.mail.protection.outlook.com', 'outlook'],
    ['eur.olc.protection.outlook.com', 'outlook'],
    ['mx1.hotmail.com', 'outlook'],
    ['mta5.am0.yahoodns.net', 'yahoo'],
    ['mx01.mail.icloud.com', 'icloud'],
    ['mx1.mail.me.com', 'icloud'],
    ['mx1.example.net', 'example.net'],
    ['mx.foo.co.uk', 'foo.co.uk'],
    ['127.0.0.20', '127.0.0.20'],
    ['mx1.example.net', 'big-host', { '*.example.net': 'big-host' }],
    ['mx1.example.net', 'exact', { '*.example.net': 'big-host', 'mx1.example.net': 'exact' }],
    ['gmail-smtp-in.l.google.com', 'mine', { '*.l.google.com': 'mine' }],
  ];
  for (const [host, site, overrides] of cases) test(`${host} → ${site}`, () => assert.equal(siteOf(host, overrides), site));
});

test('siteOfHosts: the most preferred host, alphabetically first among equals, whatever the order', () => {
  const hosts = [
    { name: 'b.one.test', preference: 5 },
    { name: 'a.two.test', preference: 5 },
    { name: 'a.zero.test', preference: 1 },
  ];
  assert.equal(siteOfHosts(hosts), 'zero.test');
  assert.equal(siteOfHosts(hosts.slice(0, 2)), 'two.test');
  assert.equal(siteOfHosts(hosts.slice(0, 2).reverse()), 'two.test');
});

describe('planMx', () => {
  const mx = (...rs: Array<[string, number]>) => ({ kind: 'records' as const, records: rs.map(([exchange, priority]) => ({ exchange, priority })) });
  test('sorted by preference, duplicates and trailing dots dropped', () => {
    const plan = planMx('d.test', mx(['b.', 20], ['a', 10], ['B', 20], ['c', 30]), { maxHosts: 10 });
    assert.deepEqual(plan.kind === 'hosts' && plan.hosts.map((h) => `${h.name}/${h.preference}`), ['a/10', 'b/20', 'c/30']);
  });
  test('equal preferences shuffled with the random source, not across preferences', () => {
    const orders = new Set<string>();
    for (const r of [0, 0.5, 0.99]) {
      const plan = planMx('d.test', mx(['a', 10], ['b', 10], ['c', 10], ['z', 5]), { maxHosts: 10, random: () => r });
      assert.ok(plan.kind === 'hosts');
      assert.equal(plan.hosts[0].name, 'z');
      orders.add(plan.hosts.map((h) => h.name).join(','));
    }
    assert.ok(orders.size > 1, [...orders].join(' | '));
  });
  test('no MX → the domain itself; null MX and NXDOMAIN → no mail; null MX next to real ones ignored', () => {
    assert.deepEqual(planMx('D.test', { kind: 'none' }, { maxHosts: 10 }), { kind: 'hosts', hosts: [{ name: 'd.test', preference: 0, implicit: true }] });
    assert.equal(planMx('d.test', mx(['', 0]), { maxHosts: 10 }).kind, 'no-mail');
    assert.equal(planMx('d.test', mx(['.', 0]), { maxHosts: 10 }).kind, 'no-mail');
    assert.equal(planMx('d.test', { kind: 'nxdomain' }, { maxHosts: 10 }).kind, 'no-mail');
    const mixed = planMx('d.test', mx(['', 0], ['a', 10]), { maxHosts: 10 });
    assert.deepEqual(mixed.kind === 'hosts' && mixed.hosts.map((h) => h.name), ['a']);
  });
  test('100 MX records → the N most preferred', () => {
    const plan = planMx('d.test', mx(...Array.from({ length: 100 }, (_, i): [string, number] => [`mx${i}`, 1000 - i])), { maxHosts: 5 });
    assert.deepEqual(plan.kind === 'hosts' && plan.hosts.map((h) => h.preference), [901, 902, 903, 904, 905]);
  });
});

describe('pools', () => {
  const pools = new Set(['default', 'bulk', 'tx', 'acme']);
  const choice = { tenants: { acme: 'acme' }, priorities: { bulk: 'bulk', transactional: 'tx' } };
  const cases: Array<[{ pool?: string; tenant: string; priority: 'critical' | 'transactional' | 'bulk' }, object]> = [
    [{ pool: 'bulk', tenant: 'acme', priority: 'critical' }, { pool: 'bulk' }],
    [{ pool: 'nope', tenant: 'acme', priority: 'critical' }, { unknownPool: 'nope' }],
    [{ tenant: 'acme', priority: 'bulk' }, { pool: 'acme' }],
    [{ tenant: 'other', priority: 'bulk' }, { pool: 'bulk' }],
    [{ tenant: 'other', priority: 'transactional' }, { pool: 'tx' }],
    [{ tenant: 'other', priority: 'critical' }, { pool: 'default' }],
  ];
  for (const [msg, want] of cases) test(`choosePool ${JSON.stringify(msg)}`, () => assert.deepEqual(choosePool(msg, choice, pools), want));

  test('chooseSource by weight among available addresses; none available → undefined', () => {
    const addrs = [
      { address: '127.0.0.2', ehlo: 'a', weight: 1 },
      { address: '127.0.0.3', ehlo: 'b', weight: 3 },
      { address: '127.0.0.4', ehlo: 'c', weight: 0 },
    ];
    assert.equal(chooseSource(addrs, () => true, () => 0.1)?.address, '127.0.0.2');
    assert.equal(chooseSource(addrs, () => true, () => 0.3)?.address, '127.0.0.3');
    assert.equal(chooseSource(addrs, () => true, () => 0.999)?.address, '127.0.0.3');
    assert.equal(chooseSource(addrs, (a) => a !== '127.0.0.3', () => 0.999)?.address, '127.0.0.2');
    assert.equal(chooseSource(addrs, () => false), undefined);
    const counts = new Map<string, number>();
    let seed = 1;
    const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
    for (let i = 0; i < 4000; i++) {
      const a = chooseSource(addrs, () => true, random)!.address;
      counts.set(a, (counts.get(a) ?? 0) + 1);
    }
    const share = (counts.get('127.0.0.3') ?? 0) / 4000;
    assert.ok(share > 0.7 && share < 0.8, `share ${share}`);
    assert.equal(counts.get('127.0.0.4'), undefined);
  });
});
