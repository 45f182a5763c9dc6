/**
 * `kustomize build` for the subset of kustomize that k8s/ uses, so the tests can build every
 * overlay without the kustomize binary: resources (files and directories), components,
 * configMapGenerator (literals, files; behaviors create and merge; the content-hash suffix and
 * the references to it), JSON 6902 patches with a target, namespace and images. A field this
 * emulation does not know makes the build fail, so a kustomization can never use something the
 * tests silently skip. The hash suffix is not byte-for-byte kustomize's (names are only compared
 * among themselves).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import fjp from 'fast-json-patch';
import { parse, parseAllDocuments } from 'yaml';

export interface Resource {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

export interface Build {
  resources: Resource[];
  /** Every file the build read (absolute paths), kustomization files included. */
  files: Set<string>;
}

interface Generator {
  name: string;
  behavior?: 'create' | 'merge' | 'replace';
  literals?: string[];
  files?: string[];
  options?: { disableNameSuffixHash?: boolean; labels?: Record<string, string>; annotations?: Record<string, string> };
}

interface Kustomization {
  apiVersion: string;
  kind: 'Kustomization' | 'Component';
  resources?: string[];
  components?: string[];
  configMapGenerator?: Generator[];
  patches?: Array<{ target?: { kind?: string; name?: string; group?: string; version?: string }; patch?: string; path?: string }>;
  namespace?: string;
  images?: Array<{ name: string; newName?: string; newTag?: string }>;
}

const KNOWN = new Set(['apiVersion', 'kind', 'resources', 'components', 'configMapGenerator', 'patches', 'namespace', 'images']);
const GENERATOR_FIELDS = new Set(['name', 'behavior', 'literals', 'files', 'options']);
/** Generated ConfigMaps that get a content-hash suffix at the end of the build. */
const hashed = new WeakSet<Resource>();
const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition', 'PersistentVolume', 'StorageClass']);

export class KustomizeError extends Error {}

/** Every YAML document of a file, as objects (empty documents dropped). */
export function readDocuments(file: string): Resource[] {
  const docs = parseAllDocuments(fs.readFileSync(file, 'utf8'));
  const out: Resource[] = [];
  for (const d of docs) {
    if (d.errors.length > 0) throw new KustomizeError(`${file}: ${d.errors.map((e) => e.message).join('; ')}`);
    const v = d.toJS() as Resource | null;
    if (v !== null) out.push(v);
  }
  return out;
}

function readKustomization(dir: string, files: Set<string>): Kustomization {
  const file = path.join(dir, 'kustomization.yaml');
  if (!fs.existsSync(file)) throw new KustomizeError(`${dir}: no kustomization.yaml`);
  files.add(file);
  const k = parse(fs.readFileSync(file, 'utf8')) as Kustomization;
  const unknown = Object.keys(k).filter((key) => !KNOWN.has(key));
  if (unknown.length > 0) throw new KustomizeError(`${file}: fields this build does not implement: ${unknown.join(', ')}`);
  return k;
}

function podSpecs(r: Resource): Array<Record<string, unknown>> {
  const spec = r.spec as Record<string, any> | undefined;
  if (!spec) return [];
  if (r.kind === 'Deployment' || r.kind === 'StatefulSet' || r.kind === 'DaemonSet' || r.kind === 'Job') return spec.template?.spec ? [spec.template.spec] : [];
  if (r.kind === 'CronJob') return spec.jobTemplate?.spec?.template?.spec ? [spec.jobTemplate.spec.template.spec] : [];
  return [];
}

function containersOf(pod: Record<string, any>): Array<Record<string, any>> {
  return [...(pod.containers ?? []), ...(pod.initContainers ?? [])];
}

function generate(g: Generator, dir: string, files: Set<string>): Resource {
  const unknown = Object.keys(g).filter((key) => !GENERATOR_FIELDS.has(key));
  if (unknown.length > 0) throw new KustomizeError(`configMapGenerator ${g.name}: unsupported fields ${unknown.join(', ')}`);
  const data: Record<string, string> = {};
  for (const l of g.literals ?? []) {
    const at = l.indexOf('=');
    if (at < 1) throw new KustomizeError(`configMapGenerator ${g.name}: bad literal "${l}"`);
    data[l.slice(0, at)] = l.slice(at + 1);
  }
  for (const f of g.files ?? []) {
    const file = path.resolve(dir, f);
    if (!file.startsWith(dir + path.sep)) throw new KustomizeError(`configMapGenerator ${g.name}: ${f} is outside ${dir} (kustomize refuses it)`);
    files.add(file);
    data[path.basename(f)] = fs.readFileSync(file, 'utf8');
  }
  const cm: Resource = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: g.name,
      ...(g.options?.labels ? { labels: { ...g.options.labels } } : {}),
      ...(g.options?.annotations ? { annotations: { ...g.options.annotations } } : {}),
    },
    data,
  };
  if (!g.options?.disableNameSuffixHash) hashed.add(cm);
  return cm;
}

function applyGenerators(k: Kustomization, dir: string, acc: Resource[], files: Set<string>): void {
  for (const g of k.configMapGenerator ?? []) {
    const made = generate(g, dir, files);
    const existing = acc.find((r) => r.kind === 'ConfigMap' && r.metadata.name === g.name);
    const behavior = g.behavior ?? 'create';
    if (behavior === 'create') {
      if (existing) throw new KustomizeError(`configMapGenerator ${g.name}: already exists (use behavior: merge)`);
      acc.push(made);
    } else if (!existing) {
      throw new KustomizeError(`configMapGenerator ${g.name}: behavior ${behavior} but no ConfigMap of that name to ${behavior}`);
    } else if (behavior === 'merge') {
      existing.data = { ...(existing.data as Record<string, string>), ...(made.data as Record<string, string>) };
    } else {
      existing.data = made.data;
    }
  }
}

function matches(r: Resource, t: NonNullable<NonNullable<Kustomization['patches']>[number]['target']>): boolean {
  const [group, version] = r.apiVersion.includes('/') ? r.apiVersion.split('/') : ['', r.apiVersion];
  return (!t.kind || t.kind === r.kind) && (!t.name || t.name === r.metadata.name) && (t.group === undefined || t.group === group) && (!t.version || t.version === version);
}

function applyPatches(k: Kustomization, acc: Resource[]): void {
  for (const p of k.patches ?? []) {
    if (!p.target || !p.patch) throw new KustomizeError('only JSON 6902 patches with a target and an inline patch are supported');
    const ops = parse(p.patch) as fjp.Operation[];
    if (!Array.isArray(ops)) throw new KustomizeError(`patch for ${JSON.stringify(p.target)} is not a JSON 6902 operation list`);
    const hits = acc.filter((r) => matches(r, p.target!));
    if (hits.length === 0) throw new KustomizeError(`patch target ${JSON.stringify(p.target)} matches no resource`);
    for (const r of hits) {
      const patched = fjp.applyPatch(r, fjp.deepClone(ops), true, false).newDocument as Resource;
      Object.assign(r, patched);
    }
  }
}

function applyImages(k: Kustomization, acc: Resource[]): void {
  for (const img of k.images ?? []) {
    for (const r of acc) {
      for (const c of podSpecs(r).flatMap(containersOf)) {
        const ref = String(c.image);
        const at = ref.lastIndexOf(':') > ref.lastIndexOf('/') ? ref.lastIndexOf(':') : -1;
        const name = at >= 0 ? ref.slice(0, at) : ref;
        const tag = at >= 0 ? ref.slice(at + 1) : undefined;
        if (name !== img.name) continue;
        const newTag = img.newTag ?? tag;
        c.image = `${img.newName ?? name}${newTag ? `:${newTag}` : ''}`;
      }
    }
  }
}

function applyNamespace(k: Kustomization, acc: Resource[]): void {
  if (!k.namespace) return;
  for (const r of acc) if (!CLUSTER_SCOPED.has(r.kind)) r.metadata.namespace = k.namespace;
}

function accumulate(dir: string, files: Set<string>, acc: Resource[], asComponent: boolean): void {
  const k = readKustomization(dir, files);
  const expected = asComponent ? 'Component' : 'Kustomization';
  if (k.kind !== expected) throw new KustomizeError(`${dir}: expected kind ${expected}, found ${k.kind}`);
  for (const entry of k.resources ?? []) {
    const target = path.resolve(dir, entry);
    if (!fs.existsSync(target)) throw new KustomizeError(`${dir}: resource ${entry} does not exist`);
    if (fs.statSync(target).isDirectory()) {
      acc.push(...build(target, files).resources);
    } else {
      files.add(target);
      acc.push(...readDocuments(target));
    }
  }
  for (const entry of k.components ?? []) accumulate(path.resolve(dir, entry), files, acc, true);
  applyGenerators(k, dir, acc, files);
  applyPatches(k, acc);
  applyImages(k, acc);
  applyNamespace(k, acc);
}

function hashNames(acc: Resource[]): void {
  const renamed = new Map<string, string>();
  for (const r of acc) {
    if (!hashed.has(r)) continue;
    const digest = createHash('sha256').update(JSON.stringify({ kind: r.kind, name: r.metadata.name, data: r.data })).digest('hex').slice(0, 10);
    const next = `${r.metadata.name}-${digest}`;
    renamed.set(r.metadata.name, next);
    r.metadata.name = next;
    hashed.delete(r);
  }
  for (const pod of acc.flatMap(podSpecs)) {
    for (const v of (pod.volumes as Array<Record<string, any>> | undefined) ?? []) if (v.configMap && renamed.has(v.configMap.name)) v.configMap.name = renamed.get(v.configMap.name);
    for (const c of containersOf(pod)) {
      for (const e of c.envFrom ?? []) if (e.configMapRef && renamed.has(e.configMapRef.name)) e.configMapRef.name = renamed.get(e.configMapRef.name);
      for (const e of c.env ?? []) {
        const ref = e.valueFrom?.configMapKeyRef;
        if (ref && renamed.has(ref.name)) ref.name = renamed.get(ref.name);
      }
    }
  }
}

/** Builds the kustomization in `dir` (a Kustomization, not a Component). */
export function build(dir: string, files: Set<string> = new Set()): Build {
  const acc: Resource[] = [];
  accumulate(path.resolve(dir), files, acc, false);
  return { resources: acc, files };
}

/** Builds `dir` as its final output: generated names get their hash suffix and references follow. */
export function kustomizeBuild(dir: string): Build {
  const b = build(dir);
  const out = b.resources;
  hashNames(out);
  const seen = new Set<string>();
  for (const r of out) {
    const id = `${r.apiVersion}/${r.kind}/${r.metadata.namespace ?? ''}/${r.metadata.name}`;
    if (seen.has(id)) throw new KustomizeError(`${dir}: two resources named ${id}`);
    seen.add(id);
  }
  return { resources: out, files: b.files };
}
