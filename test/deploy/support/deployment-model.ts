/**
 * What the cross-checks need to know about the code and the deployment files: which services are
 * stages, which `postline` commands exist, which config each command loads, and a container's
 * effective environment in a kustomize build.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Type, type TObject } from '@sinclair/typebox';
import { PostlineConfigSchema } from '../../../shared/config.js';
import { describeOptions, loadConfig } from '../../../shared/config-loader.js';
import { AnalyticsSection } from '../../../shared/config/analytics.js';
import type { Resource } from './kustomize.js';
import { REPO } from './repo.js';

/**
 * Services with a main.ts that are not deployed as a stage of their own, and why. Every other
 * folder of services/ with a main.ts must have a Deployment and a compose service.
 */
export const NOT_STAGES: Record<string, string> = {
  broker: 'the embedded broker: deployments use Apache Kafka (the dev overlay runs it as infrastructure)',
  embedded: '`postline start`, the whole pipeline in one launcher for a laptop',
};

/** Folders of services/ that hold a main.ts. */
export function servicesWithMain(): string[] {
  return fs
    .readdirSync(path.join(REPO, 'services'), { withFileTypes: true })
    .filter((d) => d.isDirectory() && fs.existsSync(path.join(REPO, 'services', d.name, 'main.ts')))
    .map((d) => d.name)
    .sort();
}

/** The stages: services with a main.ts, less NOT_STAGES. */
export const stages = (): string[] => servicesWithMain().filter((s) => !(s in NOT_STAGES));

/** The commands `postline` knows (the keys of the command table in services/cli.ts). */
export function cliCommands(): string[] {
  const src = fs.readFileSync(path.join(REPO, 'services', 'cli.ts'), 'utf8');
  const table = src.slice(src.indexOf('const commands'), src.indexOf('};', src.indexOf('const commands')));
  return [...table.matchAll(/^\s+'?([a-z][\w-]*)'?: \{ describe:/gm)].map((m) => m[1]);
}

/**
 * The config schema a command validates its environment against: every command loads the
 * shared schema; `analytics` and `migrate` add the analytics section (composed in
 * services/analytics until shared/config.ts includes it).
 */
export function schemaFor(command: string): TObject {
  const props = PostlineConfigSchema.properties as Record<string, TObject>;
  if ((command === 'analytics' || command === 'migrate') && !props.analytics) {
    return Type.Object({ ...props, analytics: AnalyticsSection }, { additionalProperties: false });
  }
  return PostlineConfigSchema;
}

/** Environment variable names a command accepts. */
export function knownEnv(command: string): Set<string> {
  // NODE_OPTIONS: the tracker and the SMTP gateway clear the image's (test/deploy/command-line-flags.test.ts).
  return new Set([...describeOptions(schemaFor(command)).map((o) => o.env), 'POSTLINE_CONFIG', 'NODE_OPTIONS']);
}

/** Loads the config a command would load from `env`; throws ConfigError listing every problem. */
export function loadFor(command: string, env: Record<string, string>): Record<string, any> {
  return loadConfig(schemaFor(command), { env }) as Record<string, any>;
}

export type Container = Record<string, any>;

export function podSpec(r: Resource): Record<string, any> {
  return (r.spec as any).template.spec;
}

/**
 * A container's environment as the kubelet builds it: envFrom ConfigMaps in order, then env
 * (later wins). Values from Secrets are a placeholder; a missing ConfigMap is an error.
 */
export function effectiveEnv(container: Container, resources: Resource[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of container.envFrom ?? []) {
    const name = from.configMapRef?.name;
    if (!name) throw new Error(`envFrom without configMapRef in container ${container.name}`);
    const cm = resources.find((r) => r.kind === 'ConfigMap' && r.metadata.name === name);
    if (!cm) throw new Error(`container ${container.name}: ConfigMap ${name} is not in the build`);
    Object.assign(env, cm.data as Record<string, string>);
  }
  for (const e of container.env ?? []) env[e.name] = e.value ?? (e.valueFrom ? 'from-secret' : '');
  return env;
}

/** The port number a probe or Service refers to (by number or by the container port's name). */
export function resolvePort(container: Container, port: number | string): number | undefined {
  if (typeof port === 'number') return port;
  return (container.ports ?? []).find((p: { name?: string }) => p.name === port)?.containerPort;
}

/** Metric names a PromQL expression refers to (histogram series mapped to their metric). */
export function metricNames(promql: string): string[] {
  return [...new Set([...promql.matchAll(/\b(postline_[a-z0-9_]+)/g)].map((m) => m[1].replace(/_(bucket|count|sum)$/, '')))];
}
