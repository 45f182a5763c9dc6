/**
 * Direct delivery as deployed (k8s/components/direct-delivery, k8s/overlays/production-direct,
 * docker-compose.direct-delivery.yml): the real `kubectl kustomize` builds every overlay into
 * exactly what the other deployment tests validate; the dispatcher finds and loads its routing and
 * shaping files where its environment says, on the node's network; the renderer reads DKIM keys
 * from per-domain Secrets as `postline dkim keygen` and `kubectl create secret --from-file` make
 * them and as the kubelet mounts them (rotation included); the Compose override merges and loads.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { keygen } from '../../services/dkim-command.js';
import { loadRoutingFile } from '../../services/dispatcher/routing/routes-file.js';
import { loadShapingRules } from '../../services/dispatcher/shaping/shaping-rules.js';
import { normalizeDomain, readKeyDirectory } from '../../shared/dkim/dkim-keys.js';
import { build, kustomizeBuild, type Resource } from './support/kustomize.js';
import { effectiveEnv, loadFor, podSpec, type Container } from './support/deployment-model.js';
import { composeConfig, kubectlKustomize, kubectlSecretFromFiles } from './support/real-tools.js';
import { REPO } from './support/repo.js';

/** Every kustomization the repository offers to `kubectl apply -k`. */
const BUILDS = ['k8s', 'k8s/base', 'k8s/overlays/dev', 'k8s/overlays/production', 'k8s/overlays/production-direct'];
const DIRECT = 'k8s/overlays/production-direct';
const COMPOSE_DIRECT = ['docker-compose.yml', 'docker-compose.direct-delivery.yml'];

const id = (r: Resource): string => `${r.apiVersion}/${r.kind}/${r.metadata.namespace ?? ''}/${r.metadata.name}`;

/** `value` with every string equal to a key of `names` replaced by its value, deeply. */
function rename<T>(value: T, names: Map<string, string>): T {
  if (typeof value === 'string') return (names.get(value) ?? value) as T;
  if (Array.isArray(value)) return value.map((v) => rename(v, names)) as T;
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, rename(v, names)])) as T;
  return value;
}

function deployment(resources: Resource[], name: string): { pod: Record<string, any>; container: Container; resource: Resource } {
  const resource = resources.find((r) => r.kind === 'Deployment' && r.metadata.name === name);
  assert.ok(resource, `no Deployment ${name}`);
  const pod = podSpec(resource);
  return { pod, container: pod.containers[0], resource };
}

/** The volume mounted at the longest mount path that holds `file`, and `file` relative to it. */
function mountFor(pod: Record<string, any>, container: Container, file: string): { volume: Record<string, any>; mount: Record<string, any>; rest: string } {
  const mount = (container.volumeMounts ?? [])
    .filter((m: { mountPath: string }) => file === m.mountPath || file.startsWith(`${m.mountPath}/`))
    .sort((a: { mountPath: string }, b: { mountPath: string }) => b.mountPath.length - a.mountPath.length)[0];
  assert.ok(mount, `${file} is on no volume of ${container.name}`);
  const volume = (pod.volumes ?? []).find((v: { name: string }) => v.name === mount.name);
  assert.ok(volume, `${container.name} mounts ${mount.name}, which is no volume of the pod`);
  return { volume, mount, rest: path.relative(mount.mountPath, file) };
}

/**
 * Lays a Secret out as the kubelet mounts it (no subPath): the files in a timestamped directory,
 * `..data` pointing at it, and each key a symlink through `..data`. A second call swaps `..data`
 * atomically, as the kubelet does when the Secret changes.
 */
function mountSecret(dir: string, secret: { data: Record<string, string> }, version: string): void {
  fs.mkdirSync(dir, { recursive: true });
  const versionDir = path.join(dir, `..${version}`);
  fs.mkdirSync(versionDir);
  for (const [key, b64] of Object.entries(secret.data)) fs.writeFileSync(path.join(versionDir, key), Buffer.from(b64, 'base64'), { mode: 0o440 });
  fs.symlinkSync(`..${version}`, path.join(dir, '..data_tmp'));
  fs.renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
  for (const key of Object.keys(secret.data)) {
    const link = path.join(dir, key);
    if (!fs.existsSync(link)) fs.symlinkSync(path.join('..data', key), link);
  }
}

describe('direct delivery on Kubernetes', () => {
  let direct: Resource[];
  let tmp: string;
  before(() => {
    direct = kustomizeBuild(path.join(REPO, DIRECT)).resources;
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'postline-direct-'));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('kubectl kustomize builds every overlay into what the deployment tests validate', () => {
    for (const dir of BUILDS) {
      const real = kubectlKustomize(dir);
      const emulated = build(path.join(REPO, dir)).resources;
      // Generated ConfigMaps carry a content hash that only kustomize computes: compare without it.
      const plain = new Set(emulated.filter((r) => r.kind === 'ConfigMap').map((r) => r.metadata.name));
      const hashed = new Map(
        real
          .filter((r) => r.kind === 'ConfigMap' && !plain.has(r.metadata.name))
          .map((r) => [r.metadata.name, r.metadata.name.replace(/-[a-z0-9]{10}$/, '')] as const)
          .filter(([, unhashed]) => plain.has(unhashed)),
      );
      const byId = (rs: Resource[]) => new Map(rs.map((r) => [id(r), r]));
      const got = byId(rename(real, hashed));
      const want = byId(JSON.parse(JSON.stringify(emulated)) as Resource[]);
      assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort(), `${dir}: the same resources`);
      for (const [key, r] of want) assert.deepEqual(got.get(key), r, `${dir}: ${key} as kubectl builds it`);
    }
  });

  it('runs the dispatcher on the node’s network, on the labelled node only, one replica at a time, its ops port off the public addresses', () => {
    const { pod, container, resource } = deployment(direct, 'postline-dispatcher');
    assert.equal(pod.hostNetwork, true, 'the pool addresses are bound in the node’s network namespace');
    assert.equal(pod.dnsPolicy, 'ClusterFirstWithHostNet', 'cluster Service names (Kafka) still resolve');
    assert.deepEqual(pod.nodeSelector, { 'postline/source-addresses': 'true' });
    assert.equal((resource.spec as any).strategy.type, 'Recreate', 'never two pods binding the same addresses');
    const scaled = direct.find((r) => r.kind === 'ScaledObject' && r.metadata.name === 'postline-dispatcher')!;
    assert.equal((scaled.spec as any).maxReplicaCount, 1);
    const ops = (container.env as Array<Record<string, any>>).find((e) => e.name === 'POSTLINE_OPS_HOST');
    assert.equal(ops?.valueFrom?.fieldRef?.fieldPath, 'status.podIP', 'the ops port (resume API) listens on the pod IP only');
    // The other stages keep the pod network.
    for (const r of direct.filter((x) => x.kind === 'Deployment' && x.metadata.name !== 'postline-dispatcher')) assert.ok(!podSpec(r).hostNetwork, `${r.metadata.name} on the pod network`);
    // Without the component nothing changes.
    const plain = kustomizeBuild(path.join(REPO, 'k8s')).resources;
    assert.ok(!deployment(plain, 'postline-dispatcher').pod.hostNetwork);
    assert.equal(effectiveEnv(deployment(plain, 'postline-dispatcher').container, plain).POSTLINE_DISPATCHER_ROUTES_FILE, '');
  });

  it('gives the dispatcher the routing and shaping files it loads, at the paths its environment names', () => {
    const { pod, container } = deployment(direct, 'postline-dispatcher');
    const env = effectiveEnv(container, direct);
    const config = loadFor('dispatcher', env).dispatcher;
    const local: Record<string, string> = {};
    for (const [option, file] of [['routesFile', config.routesFile], ['shapingFile', config.shapingFile]] as const) {
      assert.ok(file, `dispatcher.${option} is set`);
      const { volume, mount, rest } = mountFor(pod, container, file);
      assert.equal(mount.readOnly, true);
      const cm = direct.find((r) => r.kind === 'ConfigMap' && r.metadata.name === volume.configMap?.name);
      assert.ok(cm, `${file} comes from a ConfigMap in the build`);
      const text = (cm.data as Record<string, string>)[rest];
      assert.ok(text, `ConfigMap ${cm.metadata.name} has ${rest}`);
      local[option] = path.join(tmp, rest);
      fs.writeFileSync(local[option], text);
    }
    const routing = loadRoutingFile(local.routesFile);
    const mx = Object.entries(routing.pools).filter(([, p]) => routing.routes[p.route].kind === 'mx');
    assert.ok(mx.length > 0, 'the example sends direct');
    for (const [name, p] of mx) assert.ok(p.addresses.length > 0 && p.addresses.every((a) => a.ehlo), `pool ${name}: addresses with EHLO names`);
    assert.ok(routing.dns.blockLocalAddresses, 'production refuses MX hosts on private addresses');
    const rules = loadShapingRules(local.shapingFile);
    assert.ok(rules.sites.gmail && rules.sites.default, 'the shipped rules stay under the overrides');
  });

  it('mounts one DKIM Secret per signing domain at <keysDir>/<domain>, readable by the stage’s group only, and refuses unsigned mail', () => {
    const { pod, container } = deployment(direct, 'postline-renderer');
    const dkim = loadFor('renderer', effectiveEnv(container, direct)).renderer.dkim;
    assert.equal(dkim.missingKey, 'refuse');
    const mounts = (container.volumeMounts as Array<Record<string, any>>).filter((m) => m.mountPath.startsWith(`${dkim.keysDir}/`));
    assert.ok(mounts.length > 0, 'a domain is mounted');
    for (const m of mounts) {
      const domain = path.relative(dkim.keysDir, m.mountPath);
      assert.equal(normalizeDomain(domain), domain, `${m.mountPath}: one directory per domain`);
      assert.equal(m.readOnly, true);
      assert.equal(m.subPath, undefined, 'no subPath: the kubelet updates the files when the Secret changes');
      const v = mountFor(pod, container, m.mountPath).volume;
      assert.equal(v.secret?.secretName, `postline-dkim-${domain}`);
      assert.equal(v.secret.defaultMode, 0o440);
      assert.equal(v.secret.optional, undefined, 'a missing Secret keeps the pod from starting rather than sending unsigned');
    }
    assert.equal(pod.securityContext.fsGroup, pod.securityContext.runAsGroup, 'the Secret files belong to the stage’s group');
    assert.ok(!direct.some((r) => r.kind === 'Secret'), 'keys are never in the repository');
  });

  it('signs with keys from `postline dkim keygen` → `kubectl create secret --from-file` → the kubelet’s mount, and picks up a rotation', async () => {
    const { container } = deployment(direct, 'postline-renderer');
    const keysDir = loadFor('renderer', effectiveEnv(container, direct)).renderer.dkim.keysDir as string;
    const mount = (container.volumeMounts as Array<Record<string, any>>).find((m) => m.mountPath.startsWith(`${keysDir}/`))!;
    const domain = path.basename(mount.mountPath);
    const secretName = `postline-dkim-${domain}`;
    const work = path.join(tmp, 'keys');
    const root = path.join(tmp, 'container');

    // The documented commands.
    await keygen({ dir: work, domain, selector: 's2026', type: 'ed25519', bits: 2048, force: false });
    const first = kubectlSecretFromFiles(secretName, [path.join(work, domain)]);
    assert.equal(first.metadata.name, secretName);
    assert.deepEqual(Object.keys(first.data), ['s2026.pem']);
    mountSecret(path.join(root, mount.mountPath), first, '2026_12_03_10_00_00.1');
    let read = await readKeyDirectory(path.join(root, keysDir));
    assert.deepEqual(read.issues, []);
    assert.equal(read.table.domains.get(domain)?.active.selector, 's2026');

    // Rotation: a new selector in the same Secret; the kubelet swaps ..data.
    await keygen({ dir: work, domain, selector: 's2027', type: 'rsa', bits: 2048, force: false });
    const second = kubectlSecretFromFiles(secretName, [path.join(work, domain)]);
    mountSecret(path.join(root, mount.mountPath), second, '2027_01_10_10_00_00.2');
    read = await readKeyDirectory(path.join(root, keysDir), read.table);
    assert.deepEqual(read.issues, []);
    assert.deepEqual(read.table.domains.get(domain)?.keys.map((k) => k.selector), ['s2026', 's2027']);
    assert.equal(read.table.domains.get(domain)?.active.selector, 's2027', 'the last selector signs once it is in the Secret');

    // The README's commands create the Secrets the renderer mounts, from the directory keygen writes.
    const readme = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
    const keygens = [...readme.matchAll(/postline dkim keygen --domain (\S+) .*--dir (\S+)/g)];
    const creates = [...readme.matchAll(/create secret generic (\S+) --from-file=(\S+)/g)];
    assert.ok(keygens.length > 0 && creates.length > 0, 'the README shows the commands');
    const secretNames = new Set(deployment(direct, 'postline-renderer').pod.volumes.map((v: Record<string, any>) => v.secret?.secretName).filter(Boolean));
    for (const [, name, from] of creates.filter(([, n]) => n.startsWith('postline-dkim-'))) {
      assert.ok(secretNames.has(name), `the README creates ${name}, which the renderer mounts`);
      assert.ok(keygens.some(([, d, dir]) => from === `${dir}/${d}` && name === `postline-dkim-${d}`), `${name} is made from the directory keygen writes its domain's keys to`);
    }
  });
});

describe('direct delivery with docker compose', () => {
  it('docker-compose accepts the override, and it gives the dispatcher and renderer files that exist and load', () => {
    const merged = parse(composeConfig(COMPOSE_DIRECT)) as { services: Record<string, Record<string, any>> };
    const { dispatcher, renderer } = merged.services;
    assert.equal(dispatcher.network_mode, 'host', 'the dispatcher binds the host’s addresses');
    // docker-compose 1 prints volumes as source:target[:mode], Compose 2 as objects.
    const host = (v: string | { source: string; target: string }) => {
      const [source, target] = typeof v === 'string' ? v.split(':') : [v.source, v.target];
      assert.ok(fs.existsSync(source), `${source} exists`);
      return [target, source] as const;
    };
    const dMounts = new Map((dispatcher.volumes as Parameters<typeof host>[0][]).map(host));
    const env = dispatcher.environment as Record<string, string>;
    const config = loadFor('dispatcher', env);
    assert.equal(config.ops.host, '127.0.0.1', 'on the host network the ops port stays on loopback');
    assert.match(config.kafka.brokers[0], /^localhost:\d+$/);
    // On the host's network compose service names do not resolve: Kafka and the relay by their published ports.
    const published = (service: string) => (merged.services[service].ports as Array<string | { published: number | string }>).map((p) => Number(typeof p === 'string' ? p.split(':')[0] : p.published));
    assert.ok(published('kafka').includes(Number(config.kafka.brokers[0].split(':')[1])), 'Kafka is published where the dispatcher looks');
    assert.equal(config.dispatcher.relay.host, 'localhost');
    assert.ok(published('mailpit').includes(config.dispatcher.relay.port), 'Mailpit is published where the dispatcher looks');
    const routing = loadRoutingFile(dMounts.get(config.dispatcher.routesFile)!);
    assert.ok(Object.keys(routing.pools).length > 0);
    loadShapingRules(dMounts.get(config.dispatcher.shapingFile)!);
    const rConfig = loadFor('renderer', renderer.environment);
    const rMounts = new Map((renderer.volumes as Parameters<typeof host>[0][]).map(host));
    assert.ok(fs.statSync(rMounts.get(rConfig.renderer.dkim.keysDir)!).isDirectory(), 'the keys directory is mounted');
    assert.equal(rConfig.renderer.dkim.missingKey, 'refuse');
  });

  it('keeps keys out of git and out of the image build context', () => {
    const ignore = fs.readFileSync(path.join(REPO, 'config/dkim/.gitignore'), 'utf8').split('\n').filter((l) => l && !l.startsWith('#'));
    assert.deepEqual(ignore, ['*', '!.gitignore']);
    const dockerignore = fs.readFileSync(path.join(REPO, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
    assert.ok(dockerignore.includes('config'), '.dockerignore leaves config/ (the compose DKIM keys) out');
  });
});
