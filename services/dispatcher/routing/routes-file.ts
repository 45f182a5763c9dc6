/**
 * The routing file (`dispatcher.routesFile`, YAML): routes, pools and their source addresses,
 * which pool a message uses, DNS settings and site overrides. Read and validated once at start
 * into a typed object; every bad key is listed with its path (a ConfigError), like the
 * configuration's own errors. See services/dispatcher/routes.example.yaml.
 */
import fs from 'node:fs';
import dns from 'node:dns';
import net from 'node:net';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import YAML from 'yaml';
import { ConfigError } from '../../../shared/config-loader.js';
import { PRIORITIES } from '../../../shared/config.js';
import { parseHostPort } from '../route.js';
import { WarmupSchema, warmupProblems, type WarmupPlan } from '../shaping/warmup.js';

const obj = <T extends Record<string, TSchema>>(props: T, description: string) => Type.Object(props, { additionalProperties: false, description });

export const TLS_POLICIES = ['opportunistic', 'required', 'verify'] as const;
export type TlsPolicy = (typeof TLS_POLICIES)[number];

const DnsSchema = obj(
  {
    servers: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'DNS servers as host[:port]; default: the system resolver\'s (dns.getServers()).' })),
    timeoutMs: Type.Integer({ minimum: 1, default: 5000, description: 'Per query and server; then the next server, then a deferral (DNS_TEMPFAIL).' }),
    ttlFloorSeconds: Type.Integer({ minimum: 0, default: 60, description: 'Shortest time an answer is cached (also for negative answers).' }),
    ttlCeilingSeconds: Type.Integer({ minimum: 1, default: 86_400, description: 'Longest time an answer is cached, whatever its TTL.' }),
    maxMxHosts: Type.Integer({ minimum: 1, default: 10, description: 'MX hosts tried per domain at most (the most preferred).' }),
    blockLocalAddresses: Type.Boolean({ default: true, description: 'Refuse MX hosts resolving to loopback, private or link-local addresses (turn off only in tests).' }),
    smtpPort: Type.Integer({ minimum: 1, maximum: 65_535, default: 25, description: 'Port of MX hosts (25; tests set theirs).' }),
  },
  'DNS for mx routes',
);

const RouteSchema = obj(
  {
    kind: Type.Union([Type.Literal('relay'), Type.Literal('mx')], { description: 'relay: through dispatcher.relay (its fallbacks and breakers); mx: straight to the recipient domain\'s MX hosts.' }),
    tls: Type.Optional(Type.Union(TLS_POLICIES.map((t) => Type.Literal(t)), { default: 'opportunistic', description: 'mx: STARTTLS when offered, certificate unchecked (opportunistic); STARTTLS or no delivery (required); STARTTLS with a certificate valid for the MX host name (verify).' })),
    mtaSts: Type.Optional(Type.Boolean({ default: true, description: 'mx: honour the recipient domain\'s MTA-STS policy (RFC 8461).' })),
  },
  'A route',
);

const SourceSchema = obj(
  {
    address: Type.String({ minLength: 1, description: 'Local IPv4/IPv6 address the connection binds to.' }),
    ehlo: Type.String({ minLength: 1, description: 'EHLO name (with forward-confirmed reverse DNS).' }),
    weight: Type.Optional(Type.Number({ minimum: 0, default: 1, description: 'Share of the pool\'s messages.' })),
    warmup: Type.Optional(WarmupSchema),
  },
  'A source address',
);

const PoolSchema = obj(
  {
    route: Type.String({ minLength: 1, description: 'Name of a route.' }),
    addresses: Type.Optional(Type.Array(SourceSchema, { default: [], description: 'Source addresses (mx routes need at least one).' })),
  },
  'A pool',
);

export const RoutesFileSchema = obj(
  {
    dns: Type.Optional(DnsSchema),
    routes: Type.Record(Type.String({ minLength: 1 }), RouteSchema),
    pools: Type.Record(Type.String({ minLength: 1 }), PoolSchema),
    choose: Type.Optional(
      obj(
        {
          tenants: Type.Record(Type.String(), Type.String(), { default: {}, description: 'Tenant → default pool.' }),
          priorities: Type.Optional(obj(Object.fromEntries(PRIORITIES.map((p) => [p, Type.Optional(Type.String())])), 'Priority → pool')),
        },
        'Which pool a message without a pool field uses: its tenant\'s, else its priority\'s, else `default`.',
      ),
    ),
    sites: Type.Record(Type.String({ minLength: 1 }), Type.String({ minLength: 1 }), { default: {}, description: 'MX host pattern (`*.example.net` or a host) → site name; overrides the built-in provider groups.' }),
    tls: Type.Optional(obj({ caFile: Type.Optional(Type.String({ minLength: 1, description: 'Extra CA certificates (PEM) trusted for `verify` and MTA-STS.' })) }, 'TLS')),
  },
  'Routing file',
);

/** A route with its defaults applied. */
export interface RouteSpec {
  kind: 'relay' | 'mx';
  tls: TlsPolicy;
  mtaSts: boolean;
}

/** A pool with its defaults applied. */
export interface PoolSpec {
  route: string;
  addresses: Array<{ address: string; ehlo: string; weight: number; warmup?: WarmupPlan }>;
}

/** The routing file, validated, with every default applied. */
export interface RoutingFile {
  dns: Required<Static<typeof DnsSchema>>;
  routes: Record<string, RouteSpec>;
  pools: Record<string, PoolSpec>;
  choose: { tenants: Record<string, string>; priorities: Partial<Record<(typeof PRIORITIES)[number], string>> };
  sites: Record<string, string>;
  /** PEM of `tls.caFile`, when set. */
  ca?: string;
}

/** Checks that are about relations between keys (a pool's route exists, ...), with their paths. */
function crossChecks(f: Static<typeof RoutesFileSchema>): string[] {
  const problems: string[] = [];
  const d = f.dns;
  if (d && d.ttlFloorSeconds > d.ttlCeilingSeconds) problems.push('dns.ttlFloorSeconds: must not exceed dns.ttlCeilingSeconds');
  for (const [i, s] of (d?.servers ?? []).entries()) {
    const { host, port } = parseHostPort(s, 53);
    if (!net.isIP(host) || !(port > 0 && port < 65_536)) problems.push(`dns.servers.${i}: must be an IP address with an optional port (got ${JSON.stringify(s)})`);
  }
  // Shape errors are reported by the schema; relations are checked where the shape allows.
  const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isMap(f.pools) || !isMap(f.routes)) return problems;
  if (!f.pools.default) problems.push('pools.default: required (the pool of messages nothing else chooses a pool for)');
  for (const [name, pool] of Object.entries(f.pools)) {
    if (!isMap(pool) || typeof pool.route !== 'string') continue;
    const route = f.routes[pool.route];
    if (!route) problems.push(`pools.${name}.route: no route named ${JSON.stringify(pool.route)}`);
    const addresses = Array.isArray(pool.addresses) ? pool.addresses.filter(isMap) : [];
    if (route?.kind === 'mx' && addresses.length === 0) problems.push(`pools.${name}.addresses: an mx route needs at least one source address`);
    for (const [i, a] of addresses.entries()) {
      if (typeof a.address === 'string' && !net.isIP(a.address)) problems.push(`pools.${name}.addresses.${i}.address: not an IP address (got ${JSON.stringify(a.address)})`);
      if (isMap(a.warmup) && typeof a.warmup.start === 'string' && Array.isArray(a.warmup.schedule) && a.warmup.schedule.every((e) => Array.isArray(e) && typeof e[0] === 'number')) {
        problems.push(...warmupProblems(a.warmup as WarmupPlan, `pools.${name}.addresses.${i}.warmup`));
      }
    }
  }
  // An address's warm-up counts what it sends, whichever pool sent it: one plan per address.
  const plans = new Map<string, { at: string; plan: string }>();
  for (const [name, pool] of Object.entries(f.pools)) {
    for (const [i, a] of (isMap(pool) && Array.isArray(pool.addresses) ? pool.addresses.filter(isMap) : []).entries()) {
      if (typeof a.address !== 'string' || a.warmup === undefined) continue;
      const at = `pools.${name}.addresses.${i}.warmup`;
      const prev = plans.get(a.address);
      if (prev && prev.plan !== JSON.stringify(a.warmup)) problems.push(`${at}: ${a.address} already has a different warm-up plan at ${prev.at} (one plan per address)`);
      else if (!prev) plans.set(a.address, { at, plan: JSON.stringify(a.warmup) });
    }
  }
  for (const [tenant, pool] of Object.entries(isMap(f.choose?.tenants) ? f.choose.tenants : {})) if (!f.pools[pool]) problems.push(`choose.tenants.${tenant}: no pool named ${JSON.stringify(pool)}`);
  for (const [p, pool] of Object.entries(isMap(f.choose?.priorities) ? f.choose.priorities : {})) if (pool !== undefined && !f.pools[pool]) problems.push(`choose.priorities.${p}: no pool named ${JSON.stringify(pool)}`);
  return problems;
}

/** Validates a parsed routing file; `where` prefixes every problem (the file name). */
export function parseRoutingFile(input: unknown, where: string, readCa: (file: string) => string = (f) => fs.readFileSync(f, 'utf8')): RoutingFile {
  const value = Value.Default(RoutesFileSchema, Value.Clone(input ?? {})) as Static<typeof RoutesFileSchema>;
  const problems: string[] = [];
  const reported = new Set<string>();
  for (const e of Value.Errors(RoutesFileSchema, value)) {
    const path = e.path.split('/').filter(Boolean).join('.') || '(root)';
    // One problem per key (TypeBox reports a missing key twice: required, then its type).
    if (reported.has(path) && path !== '(root)') continue;
    reported.add(path);
    const choices = Array.isArray(e.schema.anyOf) ? (e.schema.anyOf as TSchema[]).map((x) => x.const).filter((c) => c !== undefined) : [];
    const message = choices.length > 0 ? `must be one of ${choices.join(', ')}` : e.message;
    problems.push(`${path}: ${message}${e.value !== undefined && typeof e.value !== 'object' ? ` (got ${JSON.stringify(e.value)})` : ''}`);
  }
  try {
    // Relations too, so one run lists every problem; a file too broken for them shows its shape errors.
    problems.push(...crossChecks(value));
  } catch {
    if (problems.length === 0) throw new ConfigError([`${where}: unreadable structure`]);
  }
  let ca: string | undefined;
  if (problems.length === 0 && value.tls?.caFile) {
    try {
      ca = readCa(value.tls.caFile);
    } catch (err) {
      problems.push(`tls.caFile: ${(err as Error).message}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems.map((p) => `${where}: ${p}`));
  const dnsSettings = Value.Default(DnsSchema, value.dns ?? {}) as Static<typeof DnsSchema>;
  return {
    dns: { ...dnsSettings, servers: dnsSettings.servers ?? dns.getServers() },
    // TypeBox applies no defaults inside records: done here.
    routes: Object.fromEntries(Object.entries(value.routes).map(([n, r]) => [n, { kind: r.kind, tls: r.tls ?? 'opportunistic', mtaSts: r.mtaSts ?? true }])),
    pools: Object.fromEntries(
      Object.entries(value.pools).map(([n, p]) => [n, { route: p.route, addresses: (p.addresses ?? []).map((a) => ({ address: a.address, ehlo: a.ehlo, weight: a.weight ?? 1, ...(a.warmup ? { warmup: a.warmup } : {}) })) }]),
    ),
    choose: { tenants: value.choose?.tenants ?? {}, priorities: value.choose?.priorities ?? {} },
    sites: value.sites,
    ...(ca ? { ca } : {}),
  };
}

/** The warm-up plan of every source address that has one (for the shaper), by address. */
export function warmupPlans(file: RoutingFile): Map<string, WarmupPlan> {
  const plans = new Map<string, WarmupPlan>();
  for (const pool of Object.values(file.pools)) for (const a of pool.addresses) if (a.warmup) plans.set(a.address, a.warmup);
  return plans;
}

/** The pools each source address belongs to (an address may serve several pools). */
export function poolsBySource(file: RoutingFile): Map<string, string[]> {
  const pools = new Map<string, string[]>();
  for (const [name, pool] of Object.entries(file.pools)) for (const a of pool.addresses) pools.set(a.address, [...(pools.get(a.address) ?? []), name]);
  return pools;
}

/** Reads and validates the routing file at `file`. */
export function loadRoutingFile(file: string): RoutingFile {
  let input: unknown;
  try {
    input = YAML.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError([`POSTLINE_DISPATCHER_ROUTES_FILE (${file}): ${(err as Error).message}`]);
  }
  return parseRoutingFile(input, `routing file ${file}`);
}
