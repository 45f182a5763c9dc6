/** The routing file: the shipped example loads; every bad key is reported with its path. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../../../shared/config-loader.js';
import { loadRoutingFile, parseRoutingFile, warmupPlans } from './routes-file.js';

test('the shipped example loads with its defaults', () => {
  const f = loadRoutingFile(fileURLToPath(new URL('../routes.example.yaml', import.meta.url)));
  assert.equal(f.routes.direct.kind, 'mx');
  assert.equal(f.routes.direct.tls, 'opportunistic');
  assert.equal(f.routes.direct.mtaSts, true);
  assert.equal(f.routes.smarthost.kind, 'relay');
  assert.deepEqual(f.pools.bulk.addresses.map((a) => a.weight), [2, 1]);
  assert.equal(f.choose.tenants.acme, 'relayed');
  assert.equal(f.choose.priorities.bulk, 'bulk');
  assert.equal(f.dns.smtpPort, 25);
  assert.ok(f.dns.servers.length > 0, 'system DNS servers by default');
  assert.equal(f.sites['*.mx.example.org'], 'example-hosting');
  const plans = warmupPlans(f);
  assert.deepEqual([...plans.keys()], ['203.0.113.21']);
  assert.equal(plans.get('203.0.113.21')?.start, '2026-12-01');
  assert.equal(plans.get('203.0.113.21')?.after, 50000);
});

test('warm-up plans: shape, dates, increasing days and one plan per address are checked', () => {
  const plan = (start: string, schedule: unknown) => ({ start, schedule });
  const bad = {
    routes: { direct: { kind: 'mx' } },
    pools: {
      default: {
        route: 'direct',
        addresses: [
          { address: '127.0.0.2', ehlo: 'a.test', warmup: plan('2026-02-30x', [[1, 10]]) },
          { address: '127.0.0.3', ehlo: 'b.test', warmup: plan('2026-13-45', [[1, 10]]) },
          { address: '127.0.0.4', ehlo: 'c.test', warmup: plan('2026-12-01', [[2, 10], [2, 20]]) },
          { address: '127.0.0.5', ehlo: 'd.test', warmup: { start: '2026-12-01', schedule: [[1, 10]], ramp: 'fast' } },
          { address: '127.0.0.6', ehlo: 'e.test', warmup: plan('2026-12-01', [[1, 10]]) },
        ],
      },
      other: { route: 'direct', addresses: [{ address: '127.0.0.6', ehlo: 'e.test', warmup: plan('2026-12-01', [[1, 99]]) }] },
    },
  };
  const err = (() => {
    try {
      parseRoutingFile(bad, 'routes.yaml');
    } catch (e) {
      return e as ConfigError;
    }
  })();
  assert.ok(err instanceof ConfigError);
  const text = err.problems.join('\n');
  assert.match(text, /routes\.yaml: pools\.default\.addresses\.0\.warmup\.start: /, text);
  assert.match(text, /routes\.yaml: pools\.default\.addresses\.1\.warmup\.start: not a date: 2026-13-45/, text);
  assert.match(text, /routes\.yaml: pools\.default\.addresses\.2\.warmup\.schedule\[1\]: day 2 does not come after day 2/, text);
  assert.match(text, /routes\.yaml: pools\.default\.addresses\.3\.warmup/, text);
  assert.match(text, /routes\.yaml: pools\.other\.addresses\.0\.warmup: 127\.0\.0\.6 already has a different warm-up plan/, text);
  const ok = parseRoutingFile({ ...bad, pools: { default: { route: 'direct', addresses: [bad.pools.default.addresses[4]] } } }, 'routes.yaml');
  assert.deepEqual(warmupPlans(ok).get('127.0.0.6'), { start: '2026-12-01', schedule: [[1, 10]] });
});

test('every bad key is listed with its path', () => {
  const bad = {
    dns: { timeoutMs: -1, servers: ['nonsense:99999'] },
    routes: { direct: { kind: 'mx', tls: 'sometimes' }, r: { kind: 'carrier-pigeon' } },
    pools: { default: { route: 'direct', addresses: [{ address: '127.0.0.2' }] } },
    extra: 1,
  };
  const err = (() => {
    try {
      parseRoutingFile(bad, 'routes.yaml');
    } catch (e) {
      return e as ConfigError;
    }
  })();
  assert.ok(err instanceof ConfigError);
  const text = err.problems.join('\n');
  for (const path of ['dns.timeoutMs', 'routes.direct.tls', 'routes.r.kind', 'pools.default.addresses.0.ehlo', 'extra']) assert.match(text, new RegExp(`routes.yaml: ${path.replace(/[.()]/g, '\\$&')}`), text);
  assert.match(text, /must be one of opportunistic, required, verify/);
});

test('relations are checked: routes of pools, a default pool, source addresses, chosen pools', () => {
  const err = (() => {
    try {
      parseRoutingFile(
        {
          dns: { ttlFloorSeconds: 100, ttlCeilingSeconds: 10, servers: ['not-an-ip'] },
          routes: { direct: { kind: 'mx' } },
          pools: { p: { route: 'nowhere' }, q: { route: 'direct' }, r: { route: 'direct', addresses: [{ address: 'mta.example.com', ehlo: 'x' }] } },
          choose: { tenants: { acme: 'ghost' }, priorities: { bulk: 'ghost2' } },
        },
        'f',
      );
    } catch (e) {
      return e as ConfigError;
    }
  })();
  assert.ok(err instanceof ConfigError);
  assert.deepEqual(err.problems, [
    'f: dns.ttlFloorSeconds: must not exceed dns.ttlCeilingSeconds',
    'f: dns.servers.0: must be an IP address with an optional port (got "not-an-ip")',
    'f: pools.default: required (the pool of messages nothing else chooses a pool for)',
    'f: pools.p.route: no route named "nowhere"',
    'f: pools.q.addresses: an mx route needs at least one source address',
    'f: pools.r.addresses.0.address: not an IP address (got "mta.example.com")',
    'f: choose.tenants.acme: no pool named "ghost"',
    'f: choose.priorities.bulk: no pool named "ghost2"',
  ]);
});

test('shape errors and relation errors are listed in one run; a file of the wrong shape gives only shape errors', () => {
  const problems = (input: unknown): string[] => {
    try {
      parseRoutingFile(input, 'f');
    } catch (e) {
      return (e as ConfigError).problems;
    }
    return [];
  };
  assert.deepEqual(problems({ routes: { direct: { kind: 'mx', tls: 'sometimes' } }, pools: { bulk: { route: 'nowhere' } } }), [
    'f: routes.direct.tls: must be one of opportunistic, required, verify (got "sometimes")',
    'f: pools.default: required (the pool of messages nothing else chooses a pool for)',
    'f: pools.bulk.route: no route named "nowhere"',
  ]);
  assert.deepEqual(problems({ routes: 5, pools: [1] }), ['f: routes: Expected object (got 5)', 'f: pools: Expected object']);
});
