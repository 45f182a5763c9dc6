/**
 * The Kubernetes manifests are valid: every file parses, every resource of every overlay's
 * build validates against its kind's schema (Kubernetes, KEDA, Prometheus operator, Strimzi) and
 * has no unknown field, every overlay builds, and every file under k8s/ is part of a build.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { kustomizeBuild, readDocuments, type Build, type Resource } from './support/kustomize.js';
import { kindOf, schemaErrors, strictFieldErrors } from './support/k8s-validation.js';
import { REPO } from './support/repo.js';

/** What `kubectl apply -k` is pointed at: k8s/ (production) and the dev overlay. */
const BUILDS = ['k8s', 'k8s/overlays/dev', 'k8s/overlays/production', 'k8s/overlays/production-direct', 'k8s/base'];

function filesUnder(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? filesUnder(path.join(dir, d.name)) : [path.join(dir, d.name)]));
}

describe('k8s manifests', () => {
  const builds = new Map<string, Build>();
  before(() => {
    for (const b of BUILDS) builds.set(b, kustomizeBuild(path.join(REPO, b)));
  });

  it('every YAML file parses', () => {
    const yamls = filesUnder(path.join(REPO, 'k8s')).filter((f) => /\.ya?ml$/.test(f));
    assert.ok(yamls.length > 20);
    for (const f of yamls) assert.doesNotThrow(() => readDocuments(f), `${path.relative(REPO, f)} does not parse`);
  });

  it('every overlay builds, and the production build has every kind it should', () => {
    const kinds = new Set(builds.get('k8s')!.resources.map(kindOf));
    for (const k of [
      'apps/v1/Deployment',
      'v1/Service',
      'v1/ConfigMap',
      'policy/v1/PodDisruptionBudget',
      'autoscaling/v2/HorizontalPodAutoscaler',
      'keda.sh/v1alpha1/ScaledObject',
      'kafka.strimzi.io/v1beta2/KafkaTopic',
      'monitoring.coreos.com/v1/ServiceMonitor',
      'monitoring.coreos.com/v1/PrometheusRule',
    ]) {
      assert.ok(kinds.has(k), `production build lacks a ${k}`);
    }
    const dev = new Set(builds.get('k8s/overlays/dev')!.resources.map(kindOf));
    assert.ok(dev.has('batch/v1/Job'), 'the dev overlay creates topics with the Job');
    assert.ok(!dev.has('kafka.strimzi.io/v1beta2/KafkaTopic'), 'the dev overlay needs no Strimzi');
  });

  it('every resource of every build validates against its kind’s schema', () => {
    const problems: string[] = [];
    for (const [name, b] of builds) {
      for (const r of b.resources) for (const e of schemaErrors(r)) problems.push(`${name}: ${r.kind}/${r.metadata.name}: ${e}`);
    }
    assert.deepEqual(problems, []);
  });

  it('no resource has a field its kind does not define', () => {
    const located = [...builds].flatMap(([name, b]) => b.resources.map((r) => ({ where: `${name}: ${r.kind}/${r.metadata.name}`, resource: r })));
    assert.deepEqual(strictFieldErrors(located), []);
  });

  it('the validators catch what they are for (a wrong type, a misspelt field, a bad topic)', () => {
    const deployment = structuredClone(builds.get('k8s')!.resources.find((r) => r.kind === 'Deployment')!) as Resource & { spec: any };
    deployment.spec.replicas = 'two';
    assert.ok(schemaErrors(deployment).length > 0, 'a string replicas count is a schema error');
    const typo = structuredClone(deployment);
    typo.spec.replicas = 2;
    typo.spec.template.spec.containers[0].readinesProbe = typo.spec.template.spec.containers[0].readinessProbe;
    const strict = strictFieldErrors([{ where: 'typo', resource: typo }]);
    assert.equal(strict.length, 1);
    assert.match(strict[0], /readinesProbe/);
    const topic = structuredClone(builds.get('k8s')!.resources.find((r) => r.kind === 'KafkaTopic')!) as Resource & { spec: any };
    topic.spec.partition = 3;
    assert.ok(schemaErrors(topic).some((e) => e.includes('partition')), 'an unknown KafkaTopic field is an error');
  });

  it('every file under k8s/ is used by a build (nothing left out of a kustomization)', () => {
    const used = new Set([...builds.values()].flatMap((b) => [...b.files]));
    const unused = filesUnder(path.join(REPO, 'k8s'))
      .filter((f) => !f.endsWith('.md') && !f.endsWith('.rules.yml'))
      .filter((f) => !used.has(f))
      .map((f) => path.relative(REPO, f));
    assert.deepEqual(unused, []);
  });

  it('names are unique per kind and namespace in every build, and overlays set a namespace', () => {
    // kustomizeBuild already refuses duplicates; here: the namespaces.
    for (const name of ['k8s', 'k8s/overlays/dev']) {
      const namespaces = new Set(builds.get(name)!.resources.map((r) => r.metadata.namespace));
      assert.equal(namespaces.size, 1, `${name} puts everything in one namespace`);
      assert.ok([...namespaces][0], `${name} sets a namespace`);
    }
  });

  it('holds no secret values: Secrets are only referenced', () => {
    for (const [name, b] of builds) {
      assert.ok(!b.resources.some((r) => r.kind === 'Secret'), `${name} contains a Secret`);
      for (const r of b.resources.filter((x) => x.kind === 'ConfigMap')) {
        for (const key of Object.keys((r.data as Record<string, string>) ?? {})) {
          assert.doesNotMatch(key, /PASSWORD|SECRET|API_KEYS$|TOKEN/, `${name}: ConfigMap ${r.metadata.name} holds ${key}`);
        }
      }
    }
  });
});
