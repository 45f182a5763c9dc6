/**
 * The tracker runs with TRACKER_NODE_FLAGS wherever it runs alone (Kubernetes, compose), not with
 * the image's NODE_OPTIONS: Node refuses those flags in NODE_OPTIONS, so the deployment and the
 * compose service replace the image's entrypoint (node services/postline.mjs) with one that
 * carries them and clear NODE_OPTIONS. See shared/node-flags.ts for the measurement.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { TRACKER_NODE_FLAGS } from '../../shared/node-flags.js';
import { REPO } from './support/repo.js';

const ENTRY = ['node', ...TRACKER_NODE_FLAGS, 'services/postline.mjs'];

test('the Kubernetes tracker runs node with TRACKER_NODE_FLAGS and an empty NODE_OPTIONS', () => {
  const docs = parseAllDocuments(fs.readFileSync(path.join(REPO, 'k8s/base/tracker/deployment.yaml'), 'utf8')).map((d) => d.toJS() as Record<string, any>);
  const deployment = docs.find((d) => d.kind === 'Deployment');
  const c = deployment?.spec.template.spec.containers.find((x: { name: string }) => x.name === 'tracker');
  assert.ok(c, 'a tracker container');
  assert.deepEqual(c.command, ENTRY);
  assert.deepEqual(c.args, ['tracker']);
  assert.deepEqual(c.env.find((e: { name: string }) => e.name === 'NODE_OPTIONS'), { name: 'NODE_OPTIONS', value: '' });
});

test('the compose tracker runs node with TRACKER_NODE_FLAGS and an empty NODE_OPTIONS', () => {
  const compose = parse(fs.readFileSync(path.join(REPO, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, any> };
  const t = compose.services.tracker;
  assert.deepEqual(t.entrypoint, ENTRY);
  assert.deepEqual(t.command, ['tracker']);
  assert.equal(t.environment.NODE_OPTIONS, '');
});

test('Node accepts TRACKER_NODE_FLAGS on its command line (and they are not NODE_OPTIONS material)', async () => {
  const { spawnSync } = await import('node:child_process');
  const ok = spawnSync(process.execPath, [...TRACKER_NODE_FLAGS, '-e', 'process.exit(0)'], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  const env = spawnSync(process.execPath, ['-e', 'process.exit(0)'], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: TRACKER_NODE_FLAGS.join(' ') } });
  assert.notEqual(env.status, 0, 'if Node ever allows them in NODE_OPTIONS, the image could set them there instead');
});
