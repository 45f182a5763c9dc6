import { test } from 'node:test';
import assert from 'node:assert/strict';
import { brokerNodeFlags, joinNodeFlagsValue, processLayout, processSpec } from './main.js';
import { BROKER_NODE_FLAGS, COHOSTED_NODE_FLAGS, EMBEDDED_ANALYTICS_NODE_FLAGS, SMTP_GATEWAY_NODE_FLAGS, STAGE_NODE_FLAGS, TRACKER_NODE_FLAGS } from '../../shared/node-flags.js';

const semiSpace = (flags: readonly string[] | undefined): string[] => (flags ?? []).filter((f) => f.startsWith('--max-semi-space-size'));

test('npm start: the co-hosted stages process runs with V8\'s default young generation, analytics with a small one', () => {
  for (const p of processLayout({ perStage: false, inbound: true })) {
    assert.deepEqual(semiSpace(processSpec(p, {}).nodeFlags), p.name === 'analytics' ? ['--max-semi-space-size=4'] : [], `${p.name} (${p.stages.join(',')})`);
  }
});

test('npm start: analytics\' heap is collected early (a 32 MB first old-generation limit, growth of at most 1.5×)', () => {
  const analytics = processLayout({ perStage: false, inbound: true }).find((p) => p.name === 'analytics');
  assert.ok(analytics);
  const flags = processSpec(analytics, {}).nodeFlags ?? [];
  assert.deepEqual(flags, [...EMBEDDED_ANALYTICS_NODE_FLAGS]);
  for (const f of ['--initial-old-space-size=32', '--heap-growing-percent=50']) assert.ok(flags.includes(f), f);
});

test('npm start: the co-hosted stages process compiles its code as it loads (--no-lazy) and grows its heap at most 2×; single-stage processes do neither', () => {
  const specs = processLayout({ perStage: false, inbound: true }).map((p) => ({ p, spec: processSpec(p, {}) }));
  const cohosted = specs.filter(({ p }) => p.stages.length > 1);
  assert.equal(cohosted.length, 1);
  assert.deepEqual(cohosted[0].spec.nodeFlags, [...COHOSTED_NODE_FLAGS]);
  assert.ok(COHOSTED_NODE_FLAGS.includes('--no-lazy'));
  assert.ok(COHOSTED_NODE_FLAGS.includes('--heap-growing-percent=100'), 'a heap that grows at most 2×');
  for (const { p, spec } of specs) {
    if (p.stages.length > 1) continue;
    assert.ok(!(spec.nodeFlags ?? []).includes('--no-lazy'), p.name);
    // Analytics' own, smaller growth limit: the test above.
    if (p.name !== 'analytics') assert.ok(!(spec.nodeFlags ?? []).some((f) => f.startsWith('--heap-growing-percent')), p.name);
  }
});

test('--process-per-stage: the renderer and the dispatcher keep the stage flags, the tracker and the SMTP gateway their own, as one stage per pod does', () => {
  const specs = processLayout({ perStage: true, inbound: true }).map((p) => processSpec(p, {}));
  assert.ok(specs.some((s) => s.name === 'tracker'), 'the layout has a tracker process');
  assert.ok(specs.some((s) => s.name === 'smtp-gateway'), 'the layout has an SMTP gateway process');
  const own: Record<string, readonly string[]> = { renderer: STAGE_NODE_FLAGS, dispatcher: STAGE_NODE_FLAGS, tracker: TRACKER_NODE_FLAGS, 'smtp-gateway': SMTP_GATEWAY_NODE_FLAGS, analytics: EMBEDDED_ANALYTICS_NODE_FLAGS };
  for (const s of specs) {
    const expected = [...(own[s.name] ?? [])];
    assert.deepEqual(s.nodeFlags, expected, s.name);
  }
});

test('--node-flags come after the layout\'s own flags, on every process', () => {
  const extra = ['--cpu-prof', '--cpu-prof-dir=/tmp/p'];
  for (const perStage of [false, true]) {
    for (const p of processLayout({ perStage, inbound: false })) {
      const flags = processSpec(p, {}, extra).nodeFlags ?? [];
      assert.deepEqual(flags.slice(-2), extra, p.name);
    }
  }
});

test('the co-hosted process with the renderer signals its backlog for a second renderer; other processes and --process-per-stage do not', () => {
  for (const perStage of [false, true]) {
    for (const p of processLayout({ perStage, inbound: true })) {
      const args = processSpec(p, {}, [], 2000).args;
      const cohostsRenderer = !perStage && p.stages.length > 1 && p.stages.includes('renderer');
      assert.equal(args.join(' ').includes('--signal-render-backlog 2000'), cohostsRenderer, `${p.name}: ${args.join(' ')}`);
      assert.ok(!processSpec(p, {}, [], 0).args.includes('--signal-render-backlog'), `${p.name} with the second renderer off`);
    }
  }
});

test('the broker runs with BROKER_NODE_FLAGS (an initial old generation, V8\'s default young one), then the user\'s --node-flags', () => {
  assert.deepEqual(brokerNodeFlags(), [...BROKER_NODE_FLAGS]);
  assert.deepEqual(semiSpace(brokerNodeFlags()), []);
  assert.ok(BROKER_NODE_FLAGS.some((f) => f.startsWith('--initial-old-space-size=')));
  assert.deepEqual(brokerNodeFlags(['--cpu-prof']), [...BROKER_NODE_FLAGS, '--cpu-prof']);
});

test('analytics and the broker run one memory-reducer GC, the co-hosted stages process V8\'s three', () => {
  const single = (flags: readonly string[] | undefined): boolean => (flags ?? []).includes('--memory-reducer-single-gc');
  assert.ok(single(brokerNodeFlags()));
  for (const perStage of [false, true]) {
    for (const p of processLayout({ perStage, inbound: true })) {
      assert.equal(single(processSpec(p, {}).nodeFlags), p.name === 'analytics', `${p.name} (per stage: ${perStage})`);
    }
  }
});

test('Node accepts every flag npm start gives its processes', async () => {
  const { spawnSync } = await import('node:child_process');
  for (const flags of [brokerNodeFlags(), EMBEDDED_ANALYTICS_NODE_FLAGS]) {
    const r = spawnSync(process.execPath, [...flags, '-e', 'process.exit(0)'], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${flags.join(' ')}: ${r.stderr}`);
  }
});

test('--node-flags takes its value as the next argument too, though it starts with a dash', () => {
  assert.deepEqual(joinNodeFlagsValue(['--node-flags', '--cpu-prof --cpu-prof-dir=/tmp/p', '--api-port', '1']), ['--node-flags=--cpu-prof --cpu-prof-dir=/tmp/p', '--api-port', '1']);
  assert.deepEqual(joinNodeFlagsValue(['--node-flags=--trace-gc']), ['--node-flags=--trace-gc']);
  assert.deepEqual(joinNodeFlagsValue(['--node-flags']), ['--node-flags'], 'no value: parseArgs says so');
});
