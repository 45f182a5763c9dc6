/**
 * Loads file templates (GitOps: versioned in a repository, mounted from a ConfigMap or baked
 * into the image) available to every tenant. Layout:
 *
 * ```
 * <dir>/partials/<partial>.hbs         shared partials: every template may use {{> partial}},
 *                                      tenant templates on email.templates included
 * <dir>/<name>/subject.hbs             required
 * <dir>/<name>/html.hbs                optional \ at least one of the two
 * <dir>/<name>/text.hbs                optional /
 * <dir>/<name>/partials/<partial>.hbs  partials of this template only (override shared ones)
 * ```
 *
 * `<name>` follows TEMPLATE_NAME_PATTERN (`partials` is reserved); entries starting with `.`
 * are skipped (Kubernetes mounts ConfigMaps through `..data` symlinks). Files are UTF-8.
 * Every problem is collected, so one reload reports all bad files at once.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { STORED_TEMPLATE_VERSION, isPartialName, isTemplateName, type StoredTemplate } from './template-schema.js';
import { partialIssue, templateIssues } from './template-compiler.js';

export interface DirectoryTemplate {
  template: StoredTemplate;
  /** Hash of this template's files (not of the shared partials). */
  revision: string;
}

export interface DirectoryTemplates {
  templates: Map<string, DirectoryTemplate>;
  partials: Record<string, string>;
  /** Hash of the shared partials: when it changes, every compiled template is stale. */
  partialsRevision: string;
}

export const EMPTY_DIRECTORY: DirectoryTemplates = { templates: new Map(), partials: {}, partialsRevision: '' };

const PARTS = ['subject', 'html', 'text'] as const;

async function readOptional(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function visibleEntries(dir: string): Promise<string[]> {
  try {
    return (await fs.readdir(dir)).filter((e) => !e.startsWith('.')).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** Reads `<dir>/*.hbs` as partials; a bad file name is an issue. */
async function readPartials(dir: string, where: string, issues: string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await visibleEntries(dir)) {
    const name = entry.replace(/\.hbs$/, '');
    if (name === entry || !isPartialName(name)) {
      issues.push(`${where}/${entry}: partial files are named <partial>.hbs with [A-Za-z0-9_-] names`);
      continue;
    }
    out[name] = await fs.readFile(path.join(dir, entry), 'utf8');
  }
  return out;
}

async function mtime(dir: string): Promise<string> {
  return (await fs.stat(dir)).mtime.toISOString();
}

async function readTemplate(dir: string, name: string, issues: string[]): Promise<DirectoryTemplate | undefined> {
  const root = path.join(dir, name);
  const [subject, html, text] = await Promise.all(PARTS.map((p) => readOptional(path.join(root, `${p}.hbs`))));
  const partials = await readPartials(path.join(root, 'partials'), `${name}/partials`, issues);
  if (subject === undefined) issues.push(`${name}: subject.hbs is missing`);
  const template: StoredTemplate = {
    schemaVersion: STORED_TEMPLATE_VERSION,
    name,
    subject: subject ?? '',
    ...(html !== undefined ? { html } : {}),
    ...(text !== undefined ? { text } : {}),
    ...(Object.keys(partials).length > 0 ? { partials } : {}),
    updatedAt: await mtime(root),
    version: 1,
  };
  const bad = templateIssues(template);
  for (const i of bad) issues.push(`${name}: ${i.path}: ${i.message}`);
  if (subject === undefined || bad.length > 0) return undefined;
  return { template, revision: hash([subject, html ?? '', text ?? '', JSON.stringify(partials)]) };
}

function hash(parts: string[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex').slice(0, 16);
}

/**
 * Reads the whole directory. Templates with problems are left out and described in `issues`
 * (callers decide whether that is fatal); a missing directory is an issue too.
 */
export async function loadTemplateDirectory(dir: string): Promise<{ directory: DirectoryTemplates; issues: string[] }> {
  const issues: string[] = [];
  try {
    if (!(await fs.stat(dir)).isDirectory()) return { directory: EMPTY_DIRECTORY, issues: [`${dir} is not a directory`] };
  } catch (err) {
    return { directory: EMPTY_DIRECTORY, issues: [`${dir}: ${(err as Error).message}`] };
  }
  const partials = await readPartials(path.join(dir, 'partials'), 'partials', issues);
  const templates = new Map<string, DirectoryTemplate>();
  for (const entry of await visibleEntries(dir)) {
    if (entry === 'partials') continue;
    if (!(await fs.stat(path.join(dir, entry))).isDirectory()) {
      issues.push(`${entry}: templates are directories (<name>/subject.hbs, html.hbs, text.hbs)`);
      continue;
    }
    if (!isTemplateName(entry)) {
      issues.push(`${entry}: not a valid template name`);
      continue;
    }
    const t = await readTemplate(dir, entry, issues);
    if (t) templates.set(entry, t);
  }
  for (const [name, source] of Object.entries(partials)) {
    const bad = partialIssue(`partials/${name}.hbs`, source);
    if (!bad) continue;
    issues.push(`${bad.path}: ${bad.message}`);
    delete partials[name];
  }
  return { directory: { templates, partials, partialsRevision: hash(Object.entries(partials).flat()) }, issues };
}
