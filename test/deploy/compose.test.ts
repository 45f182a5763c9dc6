/**
 * docker-compose.yml is valid and complete without a Docker engine: it validates against the
 * Compose specification (vendored schema), mounts only files that exist, runs every stage with a
 * `postline` command and a loadable environment, health-checks each on the port it serves, starts
 * each after what it needs, and Prometheus and Grafana are wired to what compose runs.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { parse } from 'yaml';
import { cliCommands, knownEnv, loadFor, stages } from './support/deployment-model.js';
import { composeConfig } from './support/real-tools.js';
import { REPO } from './support/repo.js';

type Service = Record<string, any>;

const COMPOSE = path.join(REPO, 'docker-compose.yml');
/** Compose's own string formats (Go durations, port specs): the schema names them, Ajv does not know them. */
const FORMATS: Record<string, RegExp> = {
  duration: /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/,
  ports: /^[\d.:\-/a-z[\]]+$/,
  expose: /^\d+(-\d+)?(\/(tcp|udp))?$/,
  subnet_ip_address: /^[\da-f.:/]+$/i,
};

function loadCompose(text = fs.readFileSync(COMPOSE, 'utf8')): { services: Record<string, Service>; volumes?: Record<string, unknown> } {
  // Compose files use YAML merge keys (<<) for shared settings.
  return parse(text, { merge: true });
}

function validator() {
  const ajv = new Ajv2019({ strict: false, allErrors: true });
  for (const [name, re] of Object.entries(FORMATS)) ajv.addFormat(name, re);
  const schema = JSON.parse(fs.readFileSync(path.join(REPO, 'test/deploy/schemas/compose-spec.json'), 'utf8')) as Record<string, unknown>;
  // It names its meta-schema by the http:// URL (Ajv2019 has it under https://), and labels
  // definitions with draft-04 `id` strings that later drafts reject: drop both, nothing refers to them.
  delete schema.$schema;
  const dropIds = (node: unknown): void => {
    if (!node || typeof node !== 'object') return;
    const obj = node as Record<string, unknown>;
    if (typeof obj.id === 'string') delete obj.id;
    for (const v of Object.values(obj)) dropIds(v);
  };
  dropIds(schema);
  return ajv.compile(schema);
}

const isPostline = (s: Service): boolean => s.image === 'postline:local';
const envOf = (s: Service): Record<string, string> => Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, String(v)]));
/** `${VAR:-default}` as compose resolves it with VAR unset. */
const interpolate = (v: string): string => v.replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1');
const hostPort = (url: string): [string, number] => {
  const u = new URL(url.includes('://') ? url : `kafka://${url}`);
  return [u.hostname, Number(u.port)];
};

describe('docker-compose.yml', () => {
  let compose: ReturnType<typeof loadCompose>;
  before(() => {
    compose = loadCompose();
  });

  it('validates against the Compose specification', () => {
    const validate = validator();
    const raw = parse(fs.readFileSync(COMPOSE, 'utf8'), { merge: true }) as { services: Record<string, Service> };
    assert.ok(validate(raw), JSON.stringify(validate.errors, null, 1));
    const broken = structuredClone(raw);
    broken.services.ingest.helthcheck = broken.services.ingest.healthcheck;
    assert.equal(validate(broken), false, 'a misspelt key is caught');
  });

  it('docker-compose accepts it as is and with the direct-delivery override (`config -q`)', () => {
    assert.equal(composeConfig(['docker-compose.yml'], true), '');
    assert.equal(composeConfig(['docker-compose.yml', 'docker-compose.direct-delivery.yml'], true), '');
    const broken = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'postline-compose-')), 'broken.yml');
    fs.writeFileSync(broken, 'services:\n  dispatcher:\n    network_mode: [host]\n');
    try {
      assert.throws(() => composeConfig(['docker-compose.yml', broken], true), /network_mode/, 'an invalid override is refused');
    } finally {
      fs.rmSync(path.dirname(broken), { recursive: true, force: true });
    }
  });

  it('mounts and builds only files that exist', () => {
    for (const [name, s] of Object.entries(compose.services)) {
      for (const v of s.volumes ?? []) {
        const source = String(v).split(':')[0];
        if (!source.startsWith('.')) {
          assert.ok(compose.volumes && source in compose.volumes, `${name}: named volume ${source} is declared`);
          continue;
        }
        assert.ok(fs.existsSync(path.join(REPO, source)), `${name} mounts ${source}, which does not exist`);
      }
      if (s.build) assert.ok(fs.existsSync(path.join(REPO, s.build.context, 'Dockerfile')), `${name} builds from a Dockerfile`);
    }
  });

  it('runs every stage, and every Postline container runs a `postline` command', () => {
    const commands = cliCommands();
    const postline = Object.entries(compose.services).filter(([, s]) => isPostline(s));
    for (const stage of stages()) assert.ok(postline.some(([, s]) => s.command?.[0] === stage), `no service runs postline ${stage}`);
    const missing = [...new Set(postline.map(([, s]) => String(s.command?.[0])))].filter((c) => !commands.includes(c));
    assert.deepEqual(missing, [], `services/cli.ts lacks: ${missing.join(', ')}`);
  });

  it('gives every Postline container only known POSTLINE_* variables, with valid values', () => {
    for (const [name, s] of Object.entries(compose.services).filter(([, x]) => isPostline(x))) {
      const command = s.command[0];
      const env = Object.fromEntries(Object.entries(envOf(s)).map(([k, v]) => [k, interpolate(v)]));
      const unknown = Object.keys(env).filter((k) => !knownEnv(command).has(k));
      assert.deepEqual(unknown, [], `${name} sets unknown variables`);
      assert.doesNotThrow(() => loadFor(command, env), `${name}'s environment does not load`);
    }
  });

  it('gives the renderer, ingest and inbound the same mounted feedback keys, and the renderer and inbound the same bounce domain', () => {
    const env = (name: string) => Object.fromEntries(Object.entries(envOf(compose.services[name])).map(([k, v]) => [k, interpolate(v)]));
    const files = ['renderer', 'ingest', 'inbound'].map((n) => {
      const file = env(n).POSTLINE_FEEDBACK_KEYS_FILE;
      assert.ok(file, `${n} has POSTLINE_FEEDBACK_KEYS_FILE`);
      const mount = ((compose.services[n] as { volumes?: string[] }).volumes ?? []).find((v) => v.split(':')[1] === file);
      assert.ok(mount, `${n} mounts ${file}`);
      return mount.split(':')[0];
    });
    assert.equal(new Set(files).size, 1, 'one keys file for all three');
    assert.ok(env('renderer').POSTLINE_FEEDBACK_RETURN_PATH_DOMAIN);
    assert.equal(env('inbound').POSTLINE_FEEDBACK_RETURN_PATH_DOMAIN, env('renderer').POSTLINE_FEEDBACK_RETURN_PATH_DOMAIN);
  });

  it('health-checks each stage’s /readyz on the port it serves, restarts stages, and drains before stopping', () => {
    for (const [name, s] of Object.entries(compose.services).filter(([, x]) => isPostline(x) && stages().includes(x.command[0]))) {
      const command = s.command[0];
      const config = loadFor(command, Object.fromEntries(Object.entries(envOf(s)).map(([k, v]) => [k, interpolate(v)])));
      const port = command === 'ingest' ? config.ingest.port : command === 'analytics' ? config.analytics.port : config.ops.port;
      const test = (s.healthcheck?.test ?? []).join(' ');
      assert.ok(test.includes(`http://127.0.0.1:${port}/readyz`), `${name} health-checks ${test}, not port ${port}`);
      assert.equal(s.restart, 'unless-stopped', `${name} restarts`);
      const grace = /^(\d+)s$/.exec(s.stop_grace_period)?.[1];
      assert.ok(Number(grace) * 1000 > config.ops.shutdownGraceMs, `${name}: stop_grace_period shorter than the drain`);
    }
  });

  it('starts each stage after Kafka is healthy and the topics exist; analytics after its schema; dependencies exist', () => {
    for (const [name, s] of Object.entries(compose.services)) {
      for (const dep of Object.keys(s.depends_on ?? {})) assert.ok(dep in compose.services, `${name} depends on unknown ${dep}`);
      for (const [dep, cond] of Object.entries<{ condition: string }>(s.depends_on ?? {})) {
        if (compose.services[dep].healthcheck) continue;
        assert.equal(cond.condition, compose.services[dep].restart === 'no' ? 'service_completed_successfully' : 'service_started', `${name}: ${dep} has no health check to wait for`);
      }
    }
    for (const stage of stages()) {
      const s = compose.services[stage];
      assert.equal(s.depends_on?.kafka?.condition, 'service_healthy', `${stage} waits for Kafka`);
      assert.equal(s.depends_on?.['init-topics']?.condition, 'service_completed_successfully', `${stage} waits for the topics`);
    }
    assert.equal(compose.services.analytics.depends_on['init-clickhouse'].condition, 'service_completed_successfully');
    assert.deepEqual(compose.services['init-topics'].command, ['topics', 'create']);
    assert.deepEqual(compose.services['init-clickhouse'].command, ['migrate']);
  });

  it('points the stages at services compose runs (Kafka, Mailpit as the relay, ClickHouse)', () => {
    for (const [name, s] of Object.entries(compose.services).filter(([, x]) => isPostline(x))) {
      const env = Object.fromEntries(Object.entries(envOf(s)).map(([k, v]) => [k, interpolate(v)]));
      const config = loadFor(s.command[0], env);
      for (const b of config.kafka.brokers as string[]) assert.ok(hostPort(b)[0] in compose.services, `${name}: broker ${b} is not a compose service`);
      if (s.command[0] === 'dispatcher') {
        assert.equal(config.dispatcher.relay.host, 'mailpit');
        assert.ok(compose.services.mailpit.ports.some((p: string) => p.endsWith(`:${config.dispatcher.relay.port}`)) || config.dispatcher.relay.port === 1025);
      }
      if (config.analytics?.clickhouseUrl) assert.ok(hostPort(config.analytics.clickhouseUrl)[0] in compose.services, `${name}: ClickHouse host`);
    }
  });

  it('has Prometheus scrape every stage on its metrics port, under the job names the alerts use', () => {
    const prom = parse(fs.readFileSync(path.join(REPO, 'services/ops-config/prometheus/prometheus.yml'), 'utf8')) as {
      scrape_configs: Array<{ job_name: string; dns_sd_configs?: Array<{ names: string[]; port: number }> }>;
    };
    for (const stage of stages()) {
      const job = prom.scrape_configs.find((j) => j.job_name === `postline-${stage}`);
      assert.ok(job, `no scrape job postline-${stage}`);
      const s = compose.services[stage];
      const config = loadFor(stage, Object.fromEntries(Object.entries(envOf(s)).map(([k, v]) => [k, interpolate(v)])));
      // Ingest serves /metrics on its ops port only, analytics on its API port.
      const port = stage === 'analytics' ? config.analytics.port : config.ops.port;
      assert.deepEqual(job.dns_sd_configs?.[0], { ...job.dns_sd_configs![0], names: [stage], port });
    }
    const mounts = (compose.services.prometheus.volumes as string[]).map((v) => v.split(':')[1]);
    assert.ok(mounts.some((m) => m.startsWith('/etc/prometheus/rules/')), 'the alert rules are loaded');
  });

  it('provisions Grafana with both data sources and both dashboard folders where the providers look', () => {
    const g = compose.services.grafana;
    const mounts = new Map((g.volumes as string[]).filter((v) => v.startsWith('.')).map((v) => [v.split(':')[1], v.split(':')[0]]));
    const providers = [...mounts.entries()].filter(([target]) => target.startsWith('/etc/grafana/provisioning/dashboards/'));
    assert.equal(providers.length, 2, 'analytics and pipeline dashboards');
    for (const [, source] of providers) {
      const p = parse(fs.readFileSync(path.join(REPO, source), 'utf8')) as { providers: Array<{ options: { path: string } }> };
      const dir = p.providers[0].options.path;
      const mounted = mounts.get(dir);
      assert.ok(mounted, `nothing is mounted at ${dir}`);
      assert.ok(fs.readdirSync(path.join(REPO, mounted!)).some((f) => f.endsWith('.json')), `${mounted} holds dashboards`);
    }
    const datasources = [...mounts.keys()].filter((t) => t.startsWith('/etc/grafana/provisioning/datasources/'));
    assert.equal(datasources.length, 2, 'ClickHouse and Prometheus');
    assert.match(g.environment.GF_PLUGINS_PREINSTALL_SYNC, /grafana-clickhouse-datasource/);
    for (const v of ['CLICKHOUSE_USER', 'CLICKHOUSE_PASSWORD']) assert.ok(v in g.environment, `the ClickHouse data source reads ${v}`);
  });

  it('accepts the README’s demo key at the send API', async () => {
    const { ApiKeyStore, readApiKeysFile } = await import('../../services/ingest/api-keys.js');
    const mount = (compose.services.ingest.volumes as string[]).find((v) => v.includes('api-keys'))!;
    const keys = new ApiKeyStore(readApiKeysFile(path.join(REPO, mount.split(':')[0])));
    const text = fs.readFileSync(COMPOSE, 'utf8');
    const key = /Bearer ([\w-]+)/.exec(text)![1];
    assert.equal(keys.authenticate(key), 'demo');
    assert.equal(compose.services.ingest.environment.POSTLINE_INGEST_API_KEYS_FILE, mount.split(':')[1]);
  });
});
