/**
 * Loads configuration once at start-up into a typed object: defaults from the schema, then an
 * optional JSON file (`POSTLINE_CONFIG`), then environment variables. Every option's variable
 * name is derived from its path (`dispatcher.idleTimeoutMs` → `POSTLINE_DISPATCHER_IDLE_TIMEOUT_MS`),
 * so docs, manifests and code cannot disagree. Bad config fails with every bad key listed.
 */
import fs from 'node:fs';
import { Kind, type TObject, type TSchema, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { PermanentError } from './errors.js';

export const ENV_PREFIX = 'POSTLINE_';
/** Variables read by the loader itself rather than mapped to an option. */
const RESERVED = new Set(['POSTLINE_CONFIG', 'POSTLINE_SUPERVISED']);

export class ConfigError extends PermanentError {
  constructor(readonly problems: string[]) {
    super('INVALID_CONFIG', `invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

export function envName(path: string[]): string {
  return ENV_PREFIX + path.map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_');
}

export interface OptionDoc {
  path: string;
  env: string;
  type: string;
  default: unknown;
  description: string;
}

function isObject(s: TSchema): s is TObject {
  return s[Kind] === 'Object';
}

/** Every leaf option of a schema, for docs, manifests and env parsing. */
export function describeOptions(schema: TObject, prefix: string[] = []): OptionDoc[] {
  const out: OptionDoc[] = [];
  for (const [key, prop] of Object.entries(schema.properties)) {
    const path = [...prefix, key];
    if (isObject(prop) && prop.default === undefined) {
      out.push(...describeOptions(prop, path));
      continue;
    }
    out.push({
      path: path.join('.'),
      env: envName(path),
      type: typeName(prop),
      default: prop.default,
      description: prop.description ?? '',
    });
  }
  return out;
}

function typeName(s: TSchema): string {
  if (s[Kind] === 'Union' && Array.isArray(s.anyOf)) return (s.anyOf as TSchema[]).map((x) => (x.const !== undefined ? JSON.stringify(x.const) : typeName(x))).join(' | ');
  if (s[Kind] === 'Array') return `${typeName(s.items as TSchema)}[]`;
  if (s[Kind] === 'Literal') return JSON.stringify(s.const);
  return String(s.type ?? s[Kind]).toLowerCase();
}

function parseEnvValue(raw: string, s: TSchema): unknown {
  const kind = s[Kind];
  if (kind === 'Number' || kind === 'Integer') {
    const n = Number(raw);
    if (raw.trim() === '' || Number.isNaN(n)) throw new Error(`expected a number, got "${raw}"`);
    return n;
  }
  if (kind === 'Boolean') {
    if (/^(true|1|yes|on)$/i.test(raw)) return true;
    if (/^(false|0|no|off)$/i.test(raw)) return false;
    throw new Error(`expected true or false, got "${raw}"`);
  }
  if (kind === 'Array' && (s.items as TSchema)[Kind] === 'String' && !raw.trim().startsWith('[')) {
    return raw.split(',').map((x) => x.trim()).filter(Boolean);
  }
  if (kind === 'Array' || kind === 'Object' || kind === 'Record') {
    try {
      return JSON.parse(raw);
    } catch {
      throw new Error(`expected JSON, got "${raw.slice(0, 40)}"`);
    }
  }
  return raw;
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let cur = target;
  for (const key of path.slice(0, -1)) {
    if (typeof cur[key] !== 'object' || cur[key] === null) cur[key] = {};
    cur = cur[key] as Record<string, unknown>;
  }
  cur[path[path.length - 1]] = value;
}

function schemaAt(schema: TObject, path: string[]): TSchema {
  let cur: TSchema = schema;
  for (const key of path) cur = (cur as TObject).properties[key];
  return cur;
}

/** Creates missing nested sections so their options' defaults apply. */
function ensureSections(schema: TObject, input: Record<string, unknown>): void {
  for (const [key, prop] of Object.entries(schema.properties)) {
    if (!isObject(prop) || prop.default !== undefined) continue;
    if (input[key] === undefined) input[key] = {};
    if (typeof input[key] === 'object' && input[key] !== null) ensureSections(prop, input[key] as Record<string, unknown>);
  }
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  /** Overrides applied last (tests, `npm start` wiring). */
  overrides?: Record<string, unknown>;
}

export function loadConfig<T extends TObject>(schema: T, opts: LoadOptions = {}): Static<T> {
  const env = opts.env ?? process.env;
  const problems: string[] = [];
  let input: Record<string, unknown> = {};
  const file = env.POSTLINE_CONFIG;
  if (file) {
    try {
      input = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      problems.push(`POSTLINE_CONFIG (${file}): ${(err as Error).message}`);
    }
  }
  const options = describeOptions(schema);
  const known = new Set(options.map((o) => o.env));
  for (const o of options) {
    const raw = env[o.env];
    if (raw === undefined) continue;
    const path = o.path.split('.');
    try {
      setPath(input, path, parseEnvValue(raw, schemaAt(schema, path)));
    } catch (err) {
      problems.push(`${o.env} (${o.path}): ${(err as Error).message}`);
    }
  }
  for (const name of Object.keys(env)) {
    if (name.startsWith(ENV_PREFIX) && !known.has(name) && !RESERVED.has(name)) problems.push(`${name}: unknown option (check the spelling)`);
  }
  for (const [path, value] of Object.entries(opts.overrides ?? {})) setPath(input, path.split('.'), value);
  ensureSections(schema, input);
  const value = Value.Default(schema, Value.Clone(input));
  for (const e of Value.Errors(schema, value)) {
    const path = e.path.split('/').filter(Boolean);
    const top = path.length > 0 ? `${envName(path)} (${path.join('.')})` : '(root)';
    const choices = Array.isArray(e.schema.anyOf) ? (e.schema.anyOf as TSchema[]).map((x) => x.const).filter((c) => c !== undefined) : [];
    const message = choices.length > 0 ? `must be one of ${choices.join(', ')}` : e.message;
    problems.push(`${top}: ${message}${e.value !== undefined && typeof e.value !== 'object' ? ` (got ${JSON.stringify(e.value)})` : ''}`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return value as Static<T>;
}
