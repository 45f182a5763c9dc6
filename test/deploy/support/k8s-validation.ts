/**
 * Validates Kubernetes resources offline, two ways:
 * - against the JSON schemas of their kind: the validators `kubernetes-models` compiles from the
 *   Kubernetes OpenAPI (core kinds) and from the KEDA and Prometheus-operator CRDs, and the
 *   vendored Strimzi KafkaTopic schema;
 * - strictly: every field must exist in the kind's type (as `kubectl apply --validate=strict`
 *   does; the OpenAPI schemas allow unknown fields, and a misspelt `readinessProbe` would be
 *   dropped silently). Done by type-checking the resources as object literals against the same
 *   packages' TypeScript types, whose excess-property check names the unknown field.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Ajv } from 'ajv';
import ts from 'typescript';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { PersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import { Service } from 'kubernetes-models/v1/Service';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import type { Resource } from './kustomize.js';
import { REPO } from './repo.js';

interface Validating {
  validate(): void;
}

interface Kind {
  /** A kubernetes-models class whose `validate()` throws on a schema violation. */
  model?: new (data: any) => Validating;
  /** A vendored JSON schema (file under test/deploy/schemas). */
  schema?: string;
  /** The TypeScript type for the strict field check: [module, exported interface]. */
  type?: [string, string];
}

const KINDS: Record<string, Kind> = {
  'v1/ConfigMap': { model: ConfigMap, type: ['kubernetes-models/v1/ConfigMap', 'IConfigMap'] },
  'v1/Service': { model: Service, type: ['kubernetes-models/v1/Service', 'IService'] },
  'v1/PersistentVolumeClaim': { model: PersistentVolumeClaim, type: ['kubernetes-models/v1/PersistentVolumeClaim', 'IPersistentVolumeClaim'] },
  'apps/v1/Deployment': { model: Deployment, type: ['kubernetes-models/apps/v1/Deployment', 'IDeployment'] },
  'autoscaling/v2/HorizontalPodAutoscaler': { model: HorizontalPodAutoscaler, type: ['kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler', 'IHorizontalPodAutoscaler'] },
  'batch/v1/Job': { model: Job, type: ['kubernetes-models/batch/v1/Job', 'IJob'] },
  'policy/v1/PodDisruptionBudget': { model: PodDisruptionBudget, type: ['kubernetes-models/policy/v1/PodDisruptionBudget', 'IPodDisruptionBudget'] },
  'keda.sh/v1alpha1/ScaledObject': { model: ScaledObject, type: ['@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject', 'IScaledObject'] },
  'monitoring.coreos.com/v1/PrometheusRule': { model: PrometheusRule, type: ['@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule', 'IPrometheusRule'] },
  'monitoring.coreos.com/v1/ServiceMonitor': { model: ServiceMonitor, type: ['@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor', 'IServiceMonitor'] },
  'kafka.strimzi.io/v1beta2/KafkaTopic': { schema: 'kafkatopic-kafka.strimzi.io-v1beta2.json' },
};

export const kindOf = (r: Pick<Resource, 'apiVersion' | 'kind'>): string => `${r.apiVersion}/${r.kind}`;

const ajv = new Ajv({ allErrors: true, strict: false });
const compiled = new Map<string, ReturnType<Ajv['compile']>>();

function schemaValidator(file: string): ReturnType<Ajv['compile']> {
  let v = compiled.get(file);
  if (!v) {
    v = ajv.compile(JSON.parse(fs.readFileSync(path.join(REPO, 'test', 'deploy', 'schemas', file), 'utf8')));
    compiled.set(file, v);
  }
  return v;
}

/** Schema violations of one resource (empty when valid); an unknown kind is a violation. */
export function schemaErrors(r: Resource): string[] {
  const kind = KINDS[kindOf(r)];
  if (!kind) return [`no schema for ${kindOf(r)}: add its validator to test/deploy/support/k8s-validation.ts`];
  if (kind.schema) {
    const validate = schemaValidator(kind.schema);
    return validate(r) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}${e.params && 'additionalProperty' in e.params ? ` (${String(e.params.additionalProperty)})` : ''}`);
  }
  try {
    new kind.model!(r).validate();
    return [];
  } catch (err) {
    return [(err as Error).message];
  }
}

/** The last program: the next check reuses its parsed type declarations (a second check is fast). */
let previous: ts.Program | undefined;

export interface Located {
  /** Where the resource comes from, for messages. */
  where: string;
  resource: Resource;
}

/**
 * Unknown fields (and wrong types) found by type-checking every resource against its kind's
 * TypeScript type. One compilation for all resources; each message names its resource.
 */
export function strictFieldErrors(resources: Located[]): string[] {
  const typed = resources.filter((l) => KINDS[kindOf(l.resource)]?.type);
  const imports = new Map<string, string>();
  const lines: string[] = [];
  const owner: Array<{ from: number; where: string }> = [];
  for (const l of typed) {
    const [mod, name] = KINDS[kindOf(l.resource)].type!;
    if (!imports.has(`${mod}#${name}`)) imports.set(`${mod}#${name}`, `T${imports.size}`);
  }
  for (const [key, alias] of imports) {
    const [mod, name] = key.split('#');
    lines.push(`import type { ${name} as ${alias} } from '${mod}';`);
  }
  typed.forEach((l, i) => {
    const [mod, name] = KINDS[kindOf(l.resource)].type!;
    owner.push({ from: lines.length, where: l.where });
    lines.push(`export const r${i}: ${imports.get(`${mod}#${name}`)} = ${JSON.stringify(l.resource, null, 1)};`.replace(/\n/g, ' '));
  });
  const fileName = path.join(REPO, 'test', 'deploy', '__strict_manifests__.ts');
  const source = lines.join('\n');
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const original = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, onError, create) =>
    path.resolve(name) === fileName ? ts.createSourceFile(name, source, lang, true) : original(name, lang, onError, create);
  const origExists = host.fileExists.bind(host);
  host.fileExists = (name) => path.resolve(name) === fileName || origExists(name);
  const program = ts.createProgram([fileName], options, host, previous);
  previous = program;
  const sf = program.getSourceFile(fileName)!;
  return ts.getPreEmitDiagnostics(program, sf).map((d) => {
    const line = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line : -1;
    const who = [...owner].reverse().find((o) => o.from <= line)?.where ?? '(imports)';
    return `${who}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
  });
}
