/**
 * Traffic-shaping rules: per site (`gmail`, `outlook`, `yahoo`, `icloud`, `default`, or any site
 * name `siteOf` gives, e.g. `example.net`) the connections per (source address, site), messages
 * per connection and rates per second / minute / hour; per recipient domain, extra rate limits.
 * Shipped defaults (`default-shaping.yaml`, with where each number comes from) are overridden key
 * by key by the user's file (`dispatcher.shapingFile`); `null` removes a window's limit. Loading
 * validates both and names every bad key (ConfigError). Resolving a rule is pure.
 */
import fs from 'node:fs';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { parse } from 'yaml';
import { ConfigError } from '../../../shared/config-loader.js';

const rate = (what: string) => Type.Optional(Type.Union([Type.Number({ exclusiveMinimum: 0, description: what }), Type.Null()]));

const RateFields = {
  perSecond: rate('messages per second'),
  perMinute: rate('messages per minute'),
  perHour: rate('messages per hour'),
};

export const SiteRuleSchema = Type.Object(
  {
    maxConnections: Type.Optional(Type.Integer({ minimum: 1, description: 'connections open at once from one source address to the site' })),
    messagesPerConnection: Type.Optional(Type.Integer({ minimum: 1, description: 'messages over one connection before it is replaced' })),
    // Read by site-shards.ts (the renderer's record keys and the dispatcher's share of the limits).
    shards: Type.Optional(Type.Integer({ minimum: 1, maximum: 64, description: 'record-key shards of a hot site, each owning 1/shards of its limits (at most maxConnections)' })),
    ...RateFields,
  },
  { additionalProperties: false },
);
export type SiteRule = Static<typeof SiteRuleSchema>;

/** A recipient domain's own limits: rates only (connections belong to the site's fleet). */
export const DomainRuleSchema = Type.Object(RateFields, { additionalProperties: false });
export type DomainRule = Static<typeof DomainRuleSchema>;

export const ShapingFileSchema = Type.Object(
  {
    sites: Type.Optional(Type.Record(Type.String({ minLength: 1 }), SiteRuleSchema)),
    domains: Type.Optional(Type.Record(Type.String({ minLength: 1 }), DomainRuleSchema)),
  },
  { additionalProperties: false },
);
export type ShapingFile = Static<typeof ShapingFileSchema>;

/** One rate window: at most `limit` messages per `ms`, paced evenly. */
export interface RateWindow {
  limit: number;
  ms: number;
}

/** A site's rule with every key filled in (windows: only those with a limit). */
export interface ResolvedRule {
  maxConnections: number;
  messagesPerConnection: number;
  windows: RateWindow[];
}

export interface ShapingRules {
  sites: Record<string, SiteRule>;
  domains: Record<string, DomainRule>;
}

export const DEFAULT_RULES_FILE = new URL('./default-shaping.yaml', import.meta.url);

const WINDOW_MS = { perSecond: 1_000, perMinute: 60_000, perHour: 3_600_000 } as const;

/** Every schema violation of `value`, each naming its key (`sites.gmail.perSecond: …`). */
function problemsOf(schema: TSchema, value: unknown, source: string): string[] {
  return [...Value.Errors(schema, value)].map((e) => {
    const key = e.path.replace(/^\//, '').replace(/\//g, '.') || '(root)';
    // The only unions are the rate windows: say what they take.
    const message = e.message === 'Expected union value' ? 'expected a number above 0, or null (no limit)' : e.message;
    return `${source}: ${key}: ${message}`;
  });
}

/** Parses and validates one shaping file's text; throws ConfigError naming every bad key. */
export function parseShapingFile(text: string, source: string): ShapingFile {
  let doc: unknown;
  try {
    doc = parse(text) ?? {};
  } catch (err) {
    throw new ConfigError([`${source}: not valid YAML: ${(err as Error).message}`]);
  }
  const problems = problemsOf(ShapingFileSchema, doc, source);
  if (problems.length > 0) throw new ConfigError(problems);
  return doc as ShapingFile;
}

/** `base` with `over` laid on it key by key (site by site, and within a site field by field). */
export function mergeRules(base: ShapingFile, over: ShapingFile): ShapingRules {
  const merge = <T extends object>(a: Record<string, T> = {}, b: Record<string, T> = {}): Record<string, T> => {
    const out: Record<string, T> = { ...a };
    for (const [name, rule] of Object.entries(b)) out[name.toLowerCase()] = { ...(out[name.toLowerCase()] ?? {}), ...rule } as T;
    return out;
  };
  return { sites: merge(base.sites, over.sites), domains: merge(base.domains, over.domains) };
}

/**
 * The shipped defaults with `userFile` (a path; empty for none) laid over them. Throws
 * ConfigError naming every bad key of either file, or a missing `default` site rule.
 */
export function loadShapingRules(userFile: string, read: (p: string | URL) => string = (p) => fs.readFileSync(p, 'utf8')): ShapingRules {
  const defaults = parseShapingFile(read(DEFAULT_RULES_FILE), 'default-shaping.yaml');
  let user: ShapingFile = {};
  if (userFile) {
    let text: string;
    try {
      text = read(userFile);
    } catch (err) {
      throw new ConfigError([`dispatcher.shapingFile (${userFile}): ${(err as Error).message}`]);
    }
    user = parseShapingFile(text, userFile);
  }
  const rules = mergeRules(defaults, user);
  const problems = completeDefaultProblems(rules);
  if (problems.length > 0) throw new ConfigError(problems);
  return rules;
}

function completeDefaultProblems(rules: ShapingRules): string[] {
  const d = rules.sites.default;
  const problems: string[] = [];
  if (!d) return ['sites.default: missing (every site without a rule of its own takes it)'];
  if (d.maxConnections === undefined) problems.push('sites.default.maxConnections: missing');
  if (d.messagesPerConnection === undefined) problems.push('sites.default.messagesPerConnection: missing');
  return problems;
}

function windowsOf(rule: { perSecond?: number | null; perMinute?: number | null; perHour?: number | null }): RateWindow[] {
  const out: RateWindow[] = [];
  for (const k of ['perSecond', 'perMinute', 'perHour'] as const) {
    const limit = rule[k];
    if (typeof limit === 'number') out.push({ limit, ms: WINDOW_MS[k] });
  }
  return out;
}

/** The rule of `site`: its own keys, the rest from `default`. */
export function siteRule(rules: ShapingRules, site: string): ResolvedRule {
  const merged = { ...rules.sites.default, ...(rules.sites[site.toLowerCase()] ?? {}) };
  return { maxConnections: merged.maxConnections ?? 1, messagesPerConnection: merged.messagesPerConnection ?? 1, windows: windowsOf(merged) };
}

/** The extra rate windows of recipient `domain`, or undefined when it has no rule of its own. */
export function domainWindows(rules: ShapingRules, domain: string): RateWindow[] | undefined {
  const rule = rules.domains[domain.toLowerCase()];
  if (!rule) return undefined;
  const w = windowsOf(rule);
  return w.length > 0 ? w : undefined;
}
