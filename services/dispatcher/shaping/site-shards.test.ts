import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mergeRules, parseShapingFile, siteRule, type ShapingRules } from './shaping-rules.js';
import { parseSiteKey, shardOf, shardShare, siteKeyDomainWindows, siteKeyOf, siteKeyRule, siteKeyVerdict, siteShards } from './site-shards.js';

const rules: ShapingRules = mergeRules(
  parseShapingFile(
    `
sites:
  default: { maxConnections: 10, messagesPerConnection: 100, perSecond: 100 }
  gmail: { maxConnections: 5, messagesPerConnection: 50, perSecond: 20, perHour: 36000, shards: 4 }
  tiny: { maxConnections: 2, perSecond: 3, shards: 8 }
domains:
  gsuite-customer.test: { perMinute: 120 }
`,
    'test',
  ),
  {},
);

describe('site shards', () => {
  test('shard counts: the rule\'s, at most maxConnections, 1 without', () => {
    assert.equal(siteShards(rules, 'gmail'), 4);
    assert.equal(siteShards(rules, 'GMAIL'), 4);
    assert.equal(siteShards(rules, 'tiny'), 2, 'each shard needs a connection');
    assert.equal(siteShards(rules, 'example.net'), 1);
  });

  test('keys: site, site#k; parsing back', () => {
    assert.equal(siteKeyOf('gmail', 2, 4), 'gmail#2');
    assert.equal(siteKeyOf('example.net', 0, 1), 'example.net');
    assert.deepEqual(parseSiteKey('gmail#2'), { site: 'gmail', shard: 2 });
    assert.deepEqual(parseSiteKey('example.net'), { site: 'example.net' });
    assert.deepEqual(parseSiteKey('odd#x'), { site: 'odd#x' });
    assert.deepEqual(parseSiteKey('#3'), { site: '#3' });
  });

  test('the shards\' shares add up to the site\'s limits exactly', () => {
    for (const [site, n] of [['gmail', 4], ['tiny', 2], ['default', 3], ['default', 7]] as const) {
      const whole = siteRule(rules, site);
      const shares = Array.from({ length: n }, (_, k) => shardShare(whole, k, n));
      assert.equal(shares.reduce((s, r) => s + r.maxConnections, 0), whole.maxConnections, `${site}/${n} connections`);
      for (const r of shares) assert.ok(r.maxConnections >= 1);
      for (const [i, w] of whole.windows.entries()) {
        const sum = shares.reduce((s, r) => s + r.windows[i].limit, 0);
        assert.ok(Math.abs(sum - w.limit) < 1e-9, `${site}/${n} window ${w.ms}: ${sum} vs ${w.limit}`);
        for (const r of shares) assert.equal(r.windows[i].ms, w.ms);
      }
      for (const r of shares) assert.equal(r.messagesPerConnection, whole.messagesPerConnection);
    }
    // gmail: 5 connections over 4 shards → 2, 1, 1, 1; 20/s → 5/s each.
    assert.deepEqual([0, 1, 2, 3].map((k) => siteKeyRule(rules, `gmail#${k}`).maxConnections), [2, 1, 1, 1]);
    assert.deepEqual(siteKeyRule(rules, 'gmail#3').windows, [{ limit: 5, ms: 1000 }, { limit: 9000, ms: 3_600_000 }]);
    assert.deepEqual(siteKeyRule(rules, 'gmail'), siteRule(rules, 'gmail'));
    assert.deepEqual(siteKeyRule(rules, 'example.net'), siteRule(rules, 'default'));
  });

  test('a domain\'s own rates are shared by the shards of its site too', () => {
    assert.deepEqual(siteKeyDomainWindows(rules, 'gmail#1', 'gsuite-customer.test'), [{ limit: 30, ms: 60_000 }]);
    assert.deepEqual(siteKeyDomainWindows(rules, 'gmail', 'gsuite-customer.test'), [{ limit: 120, ms: 60_000 }]);
    assert.equal(siteKeyDomainWindows(rules, 'gmail#1', 'other.test'), undefined);
  });

  test('the dispatcher\'s verdict: owned under the record\'s site key, else re-key to the site', () => {
    const id = 'msg-1';
    const k = shardOf(id, 4);
    assert.deepEqual(siteKeyVerdict(`gmail#${k}`, 'gmail', id, rules), { kind: 'owned', shapingSite: `gmail#${k}` });
    assert.deepEqual(siteKeyVerdict(`gmail#${(k + 1) % 4}`, 'gmail', id, rules), { kind: 'owned', shapingSite: `gmail#${(k + 1) % 4}` });
    assert.deepEqual(siteKeyVerdict('example.net', 'example.net', id, rules), { kind: 'owned', shapingSite: 'example.net' });
    // The renderer keyed by domain (DNS failed there): the site's owner must send it.
    assert.deepEqual(siteKeyVerdict('customer.test', 'gmail', id, rules), { kind: 'rekey', key: `gmail#${k}` });
    assert.deepEqual(siteKeyVerdict('customer.test', 'example.net', id, rules), { kind: 'rekey', key: 'example.net' });
    // Shards changed since: an unsharded key of a sharded site, or a shard beyond the count.
    assert.deepEqual(siteKeyVerdict('gmail', 'gmail', id, rules), { kind: 'rekey', key: `gmail#${k}` });
    assert.deepEqual(siteKeyVerdict('gmail#7', 'gmail', id, rules), { kind: 'rekey', key: `gmail#${k}` });
    assert.deepEqual(siteKeyVerdict('example.net#1', 'example.net', id, rules), { kind: 'rekey', key: 'example.net' });
  });
});
