/**
 * The tracker and the SMTP gateway run with their own node flags wherever they run alone
 * (Kubernetes, compose), not with the image's NODE_OPTIONS: Node refuses those flags in
 * NODE_OPTIONS, so the deployment and the compose service replace the image's entrypoint
 * (node services/postline.mjs) with one that carries them and clear NODE_OPTIONS. See
 * shared/node-flags.ts (COMMAND_LINE_FLAGS) for the measurements.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { COMMAND_LINE_FLAGS } from '../../shared/node-flags.js';
import { REPO } from './support/repo.js';

const entry = (flags: readonly string[]): string[] => ['node', ...flags, 'services/postline.mjs'];

test('there is a stage with flags of its own for each of the tracker and the SMTP gateway', () => {
  assert.deepEqual(Object.keys(COMMAND_LINE_FLAGS).sort(), ['smtp-gateway', 'tracker']);
});

for (const [stage, flags] of Object.entries(COMMAND_LINE_FLAGS)) {
  test(`the Kubernetes ${stage} runs node with its flags and an empty NODE_OPTIONS`, () => {
    const docs = parseAllDocuments(fs.readFileSync(path.join(REPO, `k8s/base/${stage}/deployment.yaml`), 'utf8')).map((d) => d.toJS() as Record<string, any>);
    const deployment = docs.find((d) => d.kind === 'Deployment');
    const c = deployment?.spec.template.spec.containers.find((x: { name: string }) => x.name === stage);
    assert.ok(c, `a ${stage} container`);
    assert.deepEqual(c.command, entry(flags));
    assert.equal(c.args[0], stage);
    assert.deepEqual(c.env.find((e: { name: string }) => e.name === 'NODE_OPTIONS'), { name: 'NODE_OPTIONS', value: '' });
  });

  test(`the compose ${stage} runs node with its flags and an empty NODE_OPTIONS`, () => {
    const compose = parse(fs.readFileSync(path.join(REPO, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, any> };
    const s = compose.services[stage];
    assert.ok(s, `a ${stage} service`);
    assert.deepEqual(s.entrypoint, entry(flags));
    assert.equal(s.command[0], stage);
    assert.equal(s.environment.NODE_OPTIONS, '');
  });

  test(`Node accepts the ${stage}'s flags on its command line (and they are not NODE_OPTIONS material)`, async () => {
    const { spawnSync } = await import('node:child_process');
    const ok = spawnSync(process.execPath, [...flags, '-e', 'process.exit(0)'], { encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stderr);
    const env = spawnSync(process.execPath, ['-e', 'process.exit(0)'], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: flags.join(' ') } });
    assert.notEqual(env.status, 0, 'if Node ever allows them in NODE_OPTIONS, the image could set them there instead');
  });
}
