/**
 * Where templates come from, and the cache of their compiled form. Two sources:
 *
 * 1. the templates directory (`template-directory.ts`), available to every tenant;
 * 2. each tenant's own templates on the compacted `email.templates` topic, keyed by
 *    `templateKey` (tenant and name joined by NUL), written by `PUT /v1/templates/:name`
 *    through `put()`. Records under the keys of earlier versions (`<tenant>/<name>`) are read
 *    as well, and moved to the new key by the next `put()` (or removed by `delete()`).
 *
 * Every entry point checks the name against TEMPLATE_NAME_PATTERN first: a name is never a
 * path, so `acme` can never reach `acme/eu`'s templates by asking for `eu/welcome`.
 *
 * A tenant's template overrides a directory template of the same name. Compiled templates are
 * cached by source, tenant and name together with the revision they were compiled from
 * (tenant: version + updatedAt; directory: content hash), and dropped as soon as the table
 * reports a change to that key, or when the directory's shared partials change.
 */
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { PermanentError, ValidationError } from '../errors.js';
import { CompactedTable } from '../kafka/compacted-table.js';
import type { BatchingProducer } from '../kafka/batching-producer.js';
import { Topics } from '../topics.js';
import { compileTemplate, templateIssues, type CompiledTemplate } from './template-compiler.js';
import { EMPTY_DIRECTORY, type DirectoryTemplates } from './template-directory.js';
import {
  STORED_TEMPLATE_VERSION,
  StoredTemplateContract,
  TEMPLATE_LIMITS,
  TEMPLATE_NAME_PATTERN,
  TemplateInputSchema,
  isTemplateName,
  legacyTemplateKey,
  parseTemplateKey,
  templateKey,
  type StoredTemplate,
  type TemplateInput,
} from './template-schema.js';

/** The part of a CompactedTable the repository uses (an in-memory map serves in unit tests). */
export interface TemplateStore {
  get(key: string): StoredTemplate | undefined;
  put(key: string, value: StoredTemplate | null): Promise<StoredTemplate | undefined>;
  /** Resolves once every write made before the call is visible through `get`. */
  catchUp(): Promise<void>;
  entries(): IterableIterator<[string, StoredTemplate]>;
}

export interface FoundTemplate {
  source: 'tenant' | 'directory';
  template: StoredTemplate;
}

export interface TemplateRepositoryOptions {
  store?: TemplateStore;
  directory?: DirectoryTemplates;
  /** Compiled templates kept (least recently used dropped first); default 1000. */
  cacheSize?: number;
  now?: () => Date;
}

const inputCheck = TypeCompiler.Compile(TemplateInputSchema);

export class TemplateRepository {
  private directory: DirectoryTemplates;
  private readonly cache = new Map<string, CompiledTemplate>();
  private readonly cacheSize: number;
  private readonly now: () => Date;
  /** Compilations since start (a cache miss each); for metrics and tests. */
  compilations = 0;

  constructor(private readonly opts: TemplateRepositoryOptions = {}) {
    this.directory = opts.directory ?? EMPTY_DIRECTORY;
    this.cacheSize = opts.cacheSize ?? 1000;
    this.now = opts.now ?? (() => new Date());
  }

  /** Replaces the directory templates (a reload); drops what their change made stale. Returns whether anything changed. */
  setDirectory(next: DirectoryTemplates): boolean {
    const before = this.directory;
    // Tenant templates may use shared partials too, so a partials change stales everything.
    const partials = next.partialsRevision !== before.partialsRevision;
    if (partials) this.cache.clear();
    this.directory = next;
    return partials || next.templates.size !== before.templates.size || [...next.templates].some(([name, t]) => before.templates.get(name)?.revision !== t.revision);
  }

  /** Called by the table for every applied change of a key (of either key scheme). */
  invalidate(key: string): void {
    const parsed = parseTemplateKey(key);
    if (parsed) this.cache.delete(`t:${templateKey(parsed.tenant, parsed.name)}`);
  }

  /** The tenant's own stored template (not the directory's); undefined for an invalid name. */
  get(tenant: string, name: string): StoredTemplate | undefined {
    return this.lookup(tenant, name)?.template;
  }

  /** The stored record and the key it is under: the current scheme first, then the legacy one. */
  private lookup(tenant: string, name: string): { key: string; template: StoredTemplate } | undefined {
    const store = this.opts.store;
    if (!store || !isTemplateName(name)) return undefined;
    const key = templateKey(tenant, name);
    const own = store.get(key);
    if (own) return { key, template: own };
    const legacy = legacyTemplateKey(tenant, name);
    const old = store.get(legacy);
    // The record names itself too; both must agree before a legacy key is trusted.
    return old && old.name === name ? { key: legacy, template: old } : undefined;
  }

  /** The template a message of this tenant renders with: its own, else the directory's. */
  find(tenant: string, name: string): FoundTemplate | undefined {
    if (!isTemplateName(name)) return undefined;
    const own = this.get(tenant, name);
    if (own) return { source: 'tenant', template: own };
    const file = this.directory.templates.get(name);
    return file ? { source: 'directory', template: file.template } : undefined;
  }

  /** The tenant's own templates, by name. */
  list(tenant: string): StoredTemplate[] {
    const byName = new Map<string, StoredTemplate>();
    for (const [key, value] of this.opts.store?.entries() ?? []) {
      const k = parseTemplateKey(key);
      if (k?.tenant !== tenant || k.name !== value.name) continue;
      // A legacy record never hides the record under the current key.
      if (!k.legacy || !byName.has(k.name)) byName.set(k.name, value);
    }
    return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * Stores a tenant's template after checking its shape and that every part compiles;
   * throws ValidationError naming the bad part (`html: does not compile: Parse error on
   * line 3 ...`). Resolves with the stored record once it is durable and visible here.
   */
  async put(tenant: string, name: string, input: TemplateInput): Promise<StoredTemplate> {
    const store = this.requireStore();
    const issues: Array<{ path: string; message: string }> = [];
    if (!isTemplateName(name)) issues.push({ path: 'name', message: `must match ${TEMPLATE_NAME_PATTERN}` });
    if (!inputCheck.Check(input)) {
      for (const e of inputCheck.Errors(input)) issues.push({ path: e.path.split('/').filter(Boolean).join('.'), message: e.message });
      throw new ValidationError(issues);
    }
    issues.push(...templateIssues(input));
    if (issues.length > 0) throw new ValidationError(issues);
    const previous = this.lookup(tenant, name);
    const record: StoredTemplate = {
      schemaVersion: STORED_TEMPLATE_VERSION,
      name,
      subject: input.subject,
      ...(input.html !== undefined ? { html: input.html } : {}),
      ...(input.text !== undefined ? { text: input.text } : {}),
      ...(input.partials !== undefined ? { partials: input.partials } : {}),
      updatedAt: this.now().toISOString(),
      version: (previous?.template.version ?? 0) + 1,
    };
    const size = StoredTemplateContract.encode(record).length;
    if (size > TEMPLATE_LIMITS.recordBytes) {
      throw new ValidationError([{ path: '', message: `template is ${size} bytes encoded; at most ${TEMPLATE_LIMITS.recordBytes}` }]);
    }
    const stored = (await store.put(templateKey(tenant, name), record)) ?? record;
    // Migrated: the record now lives under the current key, the legacy one is removed.
    if (previous && previous.key !== templateKey(tenant, name)) await store.put(previous.key, null);
    return stored;
  }

  /** Deletes a tenant's template (under either key scheme); resolves false if there was none. */
  async delete(tenant: string, name: string): Promise<boolean> {
    const store = this.requireStore();
    if (!isTemplateName(name)) return false;
    let found = false;
    for (const key of [templateKey(tenant, name), legacyTemplateKey(tenant, name)]) {
      if (!store.get(key)) continue;
      await store.put(key, null);
      found = true;
    }
    return found;
  }

  /**
   * The compiled template for a tenant's message, from the cache when its source is
   * unchanged. A miss first catches up with the topic (a template PUT just before the email
   * was requested may not have reached this replica yet), then throws TEMPLATE_NOT_FOUND.
   */
  async compiled(tenant: string, name: string): Promise<CompiledTemplate> {
    if (!isTemplateName(name)) throw new ValidationError([{ path: 'template.name', message: `must match ${TEMPLATE_NAME_PATTERN}` }]);
    let found = this.find(tenant, name);
    if (!found && this.opts.store) {
      await this.opts.store.catchUp();
      found = this.find(tenant, name);
    }
    if (!found) throw new PermanentError('TEMPLATE_NOT_FOUND', `template "${name}" not found for tenant "${tenant}"`);
    const cacheKey = found.source === 'tenant' ? `t:${templateKey(tenant, name)}` : `d:${name}`;
    const revision = found.source === 'tenant' ? `${found.template.version}@${found.template.updatedAt}` : this.directory.templates.get(name)!.revision;
    const cached = this.cache.get(cacheKey);
    if (cached && cached.revision === revision) {
      // Re-insert: Map order is the LRU order.
      this.cache.delete(cacheKey);
      this.cache.set(cacheKey, cached);
      return cached;
    }
    return this.compile(found.template, cacheKey, revision);
  }

  private compile(template: StoredTemplate, cacheKey: string, revision: string): CompiledTemplate {
    let compiled: CompiledTemplate;
    try {
      compiled = compileTemplate(template, this.directory.partials, revision);
    } catch (err) {
      // Compiling is deterministic: whatever it throws, trying again cannot help.
      if (err instanceof PermanentError) throw err;
      throw new PermanentError('TEMPLATE_INVALID', `template "${template.name}" does not compile: ${(err as Error).message}`, { cause: err });
    }
    this.compilations++;
    this.cache.delete(cacheKey);
    this.cache.set(cacheKey, compiled);
    if (this.cache.size > this.cacheSize) this.cache.delete(this.cache.keys().next().value!);
    return compiled;
  }

  /**
   * Compiles ahead of use what is not compiled yet, so the first message of a template after a
   * start (or a directory reload) does not wait for it: the directory's templates first (every
   * tenant may use them), then tenants' own, most recently updated first. Stops at `budgetMs`
   * of work or when the cache is full (it never evicts what it compiled itself), yielding to
   * the event loop between templates. A template that does not compile is skipped: its
   * messages fail with TEMPLATE_INVALID as before.
   */
  async warm(budgetMs: number): Promise<{ compiled: number; left: number; ms: number }> {
    const started = performance.now();
    const wanted: Array<{ template: StoredTemplate; cacheKey: string; revision: string }> = [];
    for (const [name, file] of this.directory.templates) wanted.push({ template: file.template, cacheKey: `d:${name}`, revision: file.revision });
    const own: Array<{ template: StoredTemplate; cacheKey: string; revision: string }> = [];
    for (const [key, template] of this.opts.store?.entries() ?? []) {
      const k = parseTemplateKey(key);
      // The record under the current key only (a legacy one is compiled on use if still current).
      if (!k || k.legacy || k.name !== template.name) continue;
      own.push({ template, cacheKey: `t:${templateKey(k.tenant, k.name)}`, revision: `${template.version}@${template.updatedAt}` });
    }
    own.sort((a, b) => b.template.updatedAt.localeCompare(a.template.updatedAt));
    wanted.push(...own);
    let compiled = 0;
    let done = 0;
    for (const w of wanted) {
      if (performance.now() - started >= budgetMs || this.cache.size >= this.cacheSize) break;
      done++;
      if (this.cache.get(w.cacheKey)?.revision === w.revision) continue;
      try {
        this.compile(w.template, w.cacheKey, w.revision);
        compiled++;
      } catch {
        // reported when a message uses it
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    return { compiled, left: wanted.length - done, ms: performance.now() - started };
  }

  private requireStore(): TemplateStore {
    if (!this.opts.store) throw new Error('this template repository has no store (email.templates)');
    return this.opts.store;
  }
}

export interface OpenTemplateRepositoryOptions {
  kafka: Kafka;
  producer: BatchingProducer;
  logger: Logger;
  directory?: DirectoryTemplates;
  cacheSize?: number;
  /** Defaults to `email.templates`. */
  topic?: string;
}

/**
 * Opens the repository over `email.templates`: starts a CompactedTable (resolves once it has
 * read the topic to its end) wired to invalidate the cache on every change. Used by the
 * renderer (reads) and the ingest API (`put`/`get`).
 */
export async function openTemplateRepository(opts: OpenTemplateRepositoryOptions): Promise<{ repository: TemplateRepository; stop(): Promise<void> }> {
  let repository: TemplateRepository | undefined;
  const table = new CompactedTable<StoredTemplate>({
    kafka: opts.kafka,
    producer: opts.producer,
    topic: opts.topic ?? Topics.templates,
    logger: opts.logger,
    decode: (value) => StoredTemplateContract.decode(value),
    encode: (value) => StoredTemplateContract.encode(value),
    onChange: (key) => repository?.invalidate(key),
  });
  repository = new TemplateRepository({ store: table, directory: opts.directory, cacheSize: opts.cacheSize });
  await table.start();
  return { repository, stop: () => table.stop() };
}
