/**
 * Renders the config schema for people and manifests: a Markdown reference for the README, and
 * `POSTLINE_*` defaults for a Kubernetes ConfigMap or an env file. Generated, so it cannot drift.
 */
import { stringify } from 'yaml';
import { describeOptions } from './config-loader.js';
import { PostlineConfigSchema } from './config.js';

/** Options whose values are secrets: they come from a Secret, never from the ConfigMap. */
const SECRET = /password|secret|apiKeys|pass$|^feedback\.keys$/i;

function formatDefault(v: unknown): string {
  if (v === undefined) return '';
  if (typeof v === 'string') return v === '' ? '(empty)' : v;
  return JSON.stringify(v);
}

/** The configuration reference as a Markdown table, one row per option. */
export function configReferenceMarkdown(): string {
  const rows = describeOptions(PostlineConfigSchema).map(
    (o) => `| \`${o.env}\` | ${o.type.replace(/\|/g, '\\|')} | \`${formatDefault(o.default).replace(/\|/g, '\\|')}\` | ${o.description.replace(/\|/g, '\\|')} |`,
  );
  return ['| variable | type | default | meaning |', '|---|---|---|---|', ...rows].join('\n');
}

/** Every non-secret option's default as environment variables (secrets come from a Secret). */
export function defaultEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const o of describeOptions(PostlineConfigSchema)) {
    if (SECRET.test(o.path) || o.default === undefined) continue;
    env[o.env] = Array.isArray(o.default) && o.default.every((x) => typeof x === 'string') ? o.default.join(',') : typeof o.default === 'string' ? o.default : JSON.stringify(o.default);
  }
  return env;
}

export function configMapYaml(name = 'postline-config'): string {
  return stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, labels: { 'app.kubernetes.io/part-of': 'postline' } }, data: defaultEnv() });
}

const START = /<!-- config-reference:start[^>]*-->/;
const END = '<!-- config-reference:end -->';

/** `readme` with the generated reference between its markers (the README's copy must match). */
export function withConfigReference(readme: string): string {
  const start = START.exec(readme);
  const end = readme.indexOf(END);
  if (!start || end < 0) throw new Error('README has no config-reference markers');
  return `${readme.slice(0, start.index + start[0].length)}\n${configReferenceMarkdown()}\n${readme.slice(end)}`;
}

/** A stage's `--help` list of its options (those under `prefixes`): variable, meaning, default. */
export function optionsReference(prefixes: readonly string[]): string {
  return describeOptions(PostlineConfigSchema)
    .filter((o) => prefixes.some((p) => o.path.startsWith(p)))
    .map((o) => `  ${o.env}\n      ${o.description} (default ${JSON.stringify(o.default)})`)
    .join('\n');
}
