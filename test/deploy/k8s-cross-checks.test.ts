/**
 * The Kubernetes manifests agree with the code: every stage is deployed with a command
 * `postline` has, every variable they set is a config option with a valid value, probes hit the
 * routes and ports the code serves, grace periods cover the drain, KEDA watches the groups and
 * topics the stages use and never scales past the partitions, topics match shared/topics.ts.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Registry } from 'prom-client';
import { parse } from 'yaml';
import { PRIORITIES } from '../../shared/config.js';
import { buildOpsApp } from '../../shared/ops-server.js';
import { Topics, topicSpecs } from '../../shared/topics.js';
import { rendererLanes } from '../../services/renderer/main.js';
import { schedulerLanes } from '../../services/scheduler/main.js';
import { kustomizeBuild, type Resource } from './support/kustomize.js';
import { cliCommands, effectiveEnv, knownEnv, loadFor, podSpec, resolvePort, stages, type Container } from './support/deployment-model.js';
import { REPO } from './support/repo.js';

const BUILDS = ['k8s', 'k8s/overlays/dev', 'k8s/overlays/production-direct'];

interface Workload {
  build: string;
  resource: Resource;
  container: Container;
  command: string;
  env: Record<string, string>;
}

/** Containers running the Postline image, with their command and environment. */
function workloads(build: string, resources: Resource[]): Workload[] {
  return resources
    .filter((r) => r.kind === 'Deployment' || r.kind === 'Job')
    .flatMap((r) => (podSpec(r).containers as Container[]).map((c) => ({ r, c })))
    .filter(({ c }) => /(^|\/)postline(:|$)/.test(String(c.image)))
    .map(({ r, c }) => ({ build, resource: r, container: c, command: String(c.args?.[0]), env: effectiveEnv(c, resources) }));
}

function servedPort(command: string, config: Record<string, any>): number {
  if (command === 'ingest') return config.ingest.port;
  if (command === 'analytics') return config.analytics.port;
  return config.ops.port;
}

describe('k8s manifests against the code', () => {
  const built = new Map<string, Resource[]>();
  const all: Workload[] = [];
  before(() => {
    for (const b of BUILDS) {
      built.set(b, kustomizeBuild(path.join(REPO, b)).resources);
      all.push(...workloads(b, built.get(b)!));
    }
  });
  const stageWorkloads = (): Workload[] => all.filter((w) => w.resource.kind === 'Deployment' && stages().includes(w.command));

  it('deploys every stage under services/ as `postline <stage>`, with a Service and a PodDisruptionBudget', () => {
    assert.deepEqual(stages(), ['analytics', 'dispatcher', 'inbound', 'ingest', 'renderer', 'scheduler', 'smtp-gateway', 'tracker', 'webhooks']);
    for (const [b, resources] of built) {
      for (const s of stages()) {
        const d = resources.find((r) => r.kind === 'Deployment' && r.metadata.name === `postline-${s}`);
        assert.ok(d, `${b}: no Deployment postline-${s}`);
        assert.deepEqual((podSpec(d).containers as Container[])[0].args, [s], `${b}: postline-${s} runs \`postline ${s}\``);
        const labels = (d.spec as any).selector.matchLabels;
        const matching = (kind: string) => resources.filter((r) => r.kind === kind && JSON.stringify((r.spec as any).selector.matchLabels ?? (r.spec as any).selector) === JSON.stringify(labels));
        assert.equal(matching('Service').length, 1, `${b}: one Service selects postline-${s}`);
        assert.equal(matching('PodDisruptionBudget').length, 1, `${b}: one PodDisruptionBudget covers postline-${s}`);
      }
    }
  });

  it('runs only commands `postline` has', () => {
    const commands = cliCommands();
    const missing = [...new Set(all.map((w) => w.command))].filter((c) => !commands.includes(c));
    assert.deepEqual(missing, [], `services/cli.ts lacks: ${missing.join(', ')}`);
  });

  it('sets only POSTLINE_* variables that are options of the config the command loads, with valid values', () => {
    for (const w of all) {
      const known = knownEnv(w.command);
      const unknown = Object.keys(w.env).filter((k) => !known.has(k));
      assert.deepEqual(unknown, [], `${w.build}: ${w.resource.metadata.name} sets unknown variables`);
      assert.doesNotThrow(() => loadFor(w.command, w.env), `${w.build}: ${w.resource.metadata.name}'s environment does not load`);
    }
  });

  it('probes /healthz (startup, liveness) and /readyz (readiness) on the port the stage serves them on', () => {
    for (const w of stageWorkloads()) {
      const config = loadFor(w.command, w.env);
      const expected = servedPort(w.command, config);
      const c = w.container;
      const where = `${w.build}: ${w.resource.metadata.name}`;
      for (const [probe, route] of [['startupProbe', '/healthz'], ['livenessProbe', '/healthz'], ['readinessProbe', '/readyz']] as const) {
        assert.ok(c[probe]?.httpGet, `${where} has an HTTP ${probe}`);
        assert.equal(c[probe].httpGet.path, route, `${where} ${probe}`);
        assert.equal(resolvePort(c, c[probe].httpGet.port), expected, `${where} ${probe} port`);
      }
    }
  });

  it('probe paths are routes the ops server answers (not 404)', async () => {
    const app = buildOpsApp({ registry: new Registry(), readiness: { never: () => 'not ready' } });
    const paths = new Set(stageWorkloads().flatMap((w) => ['startupProbe', 'livenessProbe', 'readinessProbe'].map((p) => w.container[p].httpGet.path as string)));
    for (const p of paths) {
      const res = await app.inject({ method: 'GET', url: p });
      assert.notEqual(res.statusCode, 404, `${p} is not served`);
    }
    assert.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 503, 'an unready stage fails its readiness probe');
    await app.close();
  });

  it('Services target named container ports, and every stage Service has the port the ServiceMonitor scrapes', () => {
    const resources = built.get('k8s')!;
    const monitor = resources.find((r) => r.kind === 'ServiceMonitor')!;
    const scraped = (monitor.spec as any).endpoints.map((e: { port: string }) => e.port) as string[];
    for (const w of stageWorkloads().filter((x) => x.build === 'k8s')) {
      const svc = resources.find((r) => r.kind === 'Service' && r.metadata.name === w.resource.metadata.name)!;
      const ports = (svc.spec as any).ports as Array<{ name: string; targetPort: string }>;
      for (const p of ports) assert.ok(resolvePort(w.container, p.targetPort), `${svc.metadata.name}: targetPort ${p.targetPort} is no container port`);
      const metrics = ports.find((p) => scraped.includes(p.name));
      assert.ok(metrics, `${svc.metadata.name} has no port the ServiceMonitor scrapes`);
      const config = loadFor(w.command, w.env);
      const metricsPort = w.command === 'ingest' ? config.ops.port : servedPort(w.command, config);
      assert.equal(resolvePort(w.container, metrics.targetPort), metricsPort, `${svc.metadata.name} scrapes the port /metrics is served on`);
      for (const [k, v] of Object.entries((monitor.spec as any).selector.matchLabels)) assert.equal(svc.metadata.labels?.[k], v, `the ServiceMonitor selects ${svc.metadata.name}`);
    }
  });

  it('gives every stage time to drain before SIGKILL (the dispatcher: its SMTP socket timeout)', () => {
    for (const w of stageWorkloads()) {
      const config = loadFor(w.command, w.env);
      const pod = podSpec(w.resource);
      const preStopMs = Number(w.container.lifecycle?.preStop?.exec?.command?.[1] ?? 0) * 1000;
      const where = `${w.build}: ${w.resource.metadata.name}`;
      assert.ok(pod.terminationGracePeriodSeconds * 1000 >= preStopMs + config.ops.shutdownGraceMs + 5000, `${where}: grace period shorter than preStop + ops.shutdownGraceMs + 5 s`);
      if (w.command === 'dispatcher') {
        assert.ok(config.ops.shutdownGraceMs >= config.dispatcher.socketTimeoutMs, `${where}: a stalled SMTP transaction outlives the drain`);
      }
    }
  });

  it('scales the consumers with KEDA on the groups and topics they consume, capped by the partitions', () => {
    const resources = built.get('k8s')!;
    const partitionsOf = new Map(resources.filter((r) => r.kind === 'KafkaTopic').map((r) => [(r.spec as any).topicName as string, (r.spec as any).partitions as number]));
    const scaled = resources.filter((r) => r.kind === 'ScaledObject');
    const expected: Record<string, Array<[group: string, topics: string[]]>> = {};
    for (const w of stageWorkloads().filter((x) => x.build === 'k8s')) {
      const c = loadFor(w.command, w.env);
      if (w.command === 'renderer') expected.renderer = rendererLanes().map((l) => [l.groupId, [l.topic]]);
      if (w.command === 'dispatcher') expected.dispatcher = PRIORITIES.map((p) => [`${c.dispatcher.groupId}-${p}`, [Topics.dispatch(p)]]);
      if (w.command === 'scheduler') expected.scheduler = schedulerLanes().map((l) => [l.groupId, l.topics]);
      if (w.command === 'analytics') expected.analytics = [[c.analytics.groupId, [Topics.events]]];
      if (w.command === 'webhooks') expected.webhooks = [[c.webhooks.groupId, [Topics.events, Topics.inbound]]];
    }
    assert.deepEqual(scaled.map((s) => (s.spec as any).scaleTargetRef.name).sort(), Object.keys(expected).map((s) => `postline-${s}`).sort());
    for (const s of scaled) {
      const stage = (s.spec as any).scaleTargetRef.name.replace('postline-', '');
      const triggers = (s.spec as any).triggers as Array<{ type: string; metadata: Record<string, string> }>;
      assert.deepEqual(
        triggers.map((t) => t.metadata.consumerGroup),
        expected[stage].map(([g]) => g),
        `${stage}: one trigger per consumer group`,
      );
      for (const [i, t] of triggers.entries()) {
        assert.equal(t.type, 'kafka');
        assert.ok(Number(t.metadata.lagThreshold) > 0, `${stage}: lagThreshold set`);
        assert.equal(t.metadata.bootstrapServersFromEnv, 'POSTLINE_KAFKA_BROKERS');
        const topics = t.metadata.topic ? [t.metadata.topic] : expected[stage][i][1];
        assert.deepEqual(topics, expected[stage][i][1], `${stage}: the trigger watches the topics the group consumes`);
        for (const topic of topics) {
          assert.ok(partitionsOf.has(topic), `${topic} is a KafkaTopic`);
          assert.ok((s.spec as any).maxReplicaCount <= partitionsOf.get(topic)!, `${stage}: more replicas than ${topic} has partitions`);
        }
      }
    }
  });

  it('creates the topics of shared/topics.ts with the partitions and replication the stages are configured with', () => {
    const resources = built.get('k8s')!;
    const env = all.find((w) => w.build === 'k8s' && w.command === 'renderer')!.env;
    const kafka = loadFor('renderer', env).kafka;
    const expected = topicSpecs(kafka.partitions);
    const topics = resources.filter((r) => r.kind === 'KafkaTopic');
    assert.deepEqual(topics.map((t) => (t.spec as any).topicName).sort(), expected.map((s) => s.topic).sort());
    for (const t of topics) {
      const spec = expected.find((s) => s.topic === (t.spec as any).topicName)!;
      assert.equal((t.spec as any).partitions, spec.numPartitions, `${spec.topic} partitions`);
      assert.equal((t.spec as any).replicas, kafka.replicationFactor, `${spec.topic} replicas`);
      for (const c of spec.configEntries) assert.equal((t.spec as any).config[c.name], c.value, `${spec.topic} ${c.name}`);
    }
    assert.equal(kafka.createTopics, false, 'with Strimzi the stages do not create topics');
    const job = built.get('k8s/overlays/dev')!.find((r) => r.kind === 'Job')!;
    assert.deepEqual((podSpec(job).containers as Container[])[0].args, ['topics', 'create']);
  });

  it('names only Postline topics in manifests and alerts', () => {
    const known = new Set(topicSpecs(1).map((s) => s.topic));
    const texts = [
      ...[...built.values()].flat().map((r) => JSON.stringify(r)),
      fs.readFileSync(path.join(REPO, 'k8s/components/monitoring/postline-alerts.rules.yml'), 'utf8'),
      fs.readFileSync(path.join(REPO, 'k8s/components/monitoring/dashboards/postline-pipeline-health.json'), 'utf8'),
    ];
    const named = new Set(texts.flatMap((t) => [...t.matchAll(/\bemail\.[a-z0-9]+(?:\.[a-z0-9]+)*\b/g)].map((m) => m[0])));
    const strange = [...named].filter((n) => !known.has(n) && !/^email\.(retry|dispatch)$/.test(n));
    assert.deepEqual(strange, []);
  });

  it('tags the image with package.json’s version', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string };
    const base = parse(fs.readFileSync(path.join(REPO, 'k8s/base/kustomization.yaml'), 'utf8')) as { images: Array<{ name: string; newTag: string }> };
    assert.equal(base.images.find((i) => i.name === 'postline')?.newTag, pkg.version);
  });

  it('gives the renderer, ingest and inbound the same feedback keys and the renderer and inbound the same bounce domain', () => {
    for (const build of BUILDS) {
      const ws = stageWorkloads().filter((w) => w.build === build);
      const byStage = (s: string) => ws.find((w) => w.command === s)!;
      for (const s of ['renderer', 'ingest', 'inbound']) {
        const w = byStage(s);
        const file = w.env.POSTLINE_FEEDBACK_KEYS_FILE;
        assert.ok(file, `${build}: ${s} has POSTLINE_FEEDBACK_KEYS_FILE`);
        const mount = (w.container.volumeMounts ?? []).find((m: { mountPath: string }) => file.startsWith(`${m.mountPath}/`));
        assert.ok(mount, `${build}: ${s} mounts ${file}`);
        const volume = (podSpec(w.resource).volumes ?? []).find((v: { name: string }) => v.name === mount.name);
        assert.equal(volume?.secret?.secretName, 'postline-feedback-keys', `${build}: ${s} reads the keys from the postline-feedback-keys Secret`);
      }
      const domain = byStage('renderer').env.POSTLINE_FEEDBACK_RETURN_PATH_DOMAIN;
      assert.ok(domain, `${build}: the renderer signs return paths for a bounce domain`);
      assert.equal(byStage('inbound').env.POSTLINE_FEEDBACK_RETURN_PATH_DOMAIN, domain, `${build}: inbound receives for the renderer's bounce domain`);
    }
  });

  it('points the analytics stage at a ClickHouse server (the image leaves the embedded engine out)', () => {
    for (const w of stageWorkloads().filter((x) => x.command === 'analytics')) {
      assert.match(loadFor('analytics', w.env).analytics.clickhouseUrl, /^https?:\/\//, `${w.build}: analytics has a ClickHouse URL`);
    }
  });
});
