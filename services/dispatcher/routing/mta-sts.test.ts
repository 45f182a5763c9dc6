/** The MTA-STS policy cache: max_age honoured, no-policy remembered briefly, a failed refresh keeps the policy, lookups shared. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { MTASTSPolicy } from 'mailauth';
import { MtaStsPolicies } from './mta-sts.js';

function fakeFetch(answers: Array<{ policy: MTASTSPolicy; status: 'found' | 'renewed' | 'not_found' | 'errored' } | Error>) {
  const calls: Array<{ domain: string; known?: MTASTSPolicy }> = [];
  const fetch = (async (domain: string, known?: MTASTSPolicy) => {
    calls.push({ domain, known });
    const next = answers.shift();
    if (!next) throw new Error('unexpected fetch');
    if (next instanceof Error) throw next;
    return next;
  }) as never;
  return { calls, fetch };
}

const enforce: MTASTSPolicy = { id: '1', mode: 'enforce', mx: ['mx1.example.test', '*.backup.example.test'], maxAge: 3600 };

test('a policy is cached for its max_age, then refreshed with the known policy', async () => {
  let now = 0;
  const f = fakeFetch([{ policy: enforce, status: 'found' }, { policy: enforce, status: 'renewed' }]);
  const p = new MtaStsPolicies({ lookup: async () => [], negativeTtlMs: 60_000, now: () => now, fetch: f.fetch });
  const seen = await Promise.all([p.policyFor('Example.test'), p.policyFor('example.test')]);
  assert.equal(seen[0].mode, 'enforce');
  assert.equal(f.calls.length, 1, 'concurrent lookups share one fetch');
  now += 3_599_000;
  await p.policyFor('example.test');
  assert.equal(f.calls.length, 1);
  now += 2_000;
  await p.policyFor('example.test');
  assert.equal(f.calls.length, 2);
  assert.equal(f.calls[1].known?.id, '1');
});

test('no policy is remembered for the negative TTL; a fetch that throws counts as no policy', async () => {
  let now = 0;
  const f = fakeFetch([{ policy: { id: false, mode: 'none' }, status: 'not_found' }, new Error('boom')]);
  const p = new MtaStsPolicies({ lookup: async () => [], negativeTtlMs: 60_000, now: () => now, fetch: f.fetch });
  assert.equal((await p.policyFor('none.test')).mode, 'none');
  now += 59_000;
  await p.policyFor('none.test');
  assert.equal(f.calls.length, 1);
  now += 2_000;
  assert.equal((await p.policyFor('none.test')).mode, 'none', 'an error means no policy when none is known');
  assert.equal(f.calls.length, 2);
});

test('allows: listed hosts and wildcards; violations reported', () => {
  const p = new MtaStsPolicies({ lookup: async () => [], negativeTtlMs: 1 });
  const violations: string[] = [];
  p.on('violation', (_d: string, host: string, mode: string) => violations.push(`${host}/${mode}`));
  assert.equal(p.allows('example.test', 'MX1.example.test', enforce), true);
  assert.equal(p.allows('example.test', 'a.backup.example.test', enforce), true);
  assert.equal(p.allows('example.test', 'mx0.elsewhere.test', enforce), false);
  assert.equal(p.allows('example.test', 'anything.test', { id: false, mode: 'none' }), true);
  assert.deepEqual(violations, ['mx0.elsewhere.test/enforce']);
});
