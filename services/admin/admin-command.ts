/**
 * `postline tenants create|list`, `postline keys create|list|revoke` and
 * `postline domains add|list|remove`: administration over the send API (`/v1/admin/...`), as any
 * script would use it — with an admin-scoped key (`--key`, default POSTLINE_API_KEY) and no
 * broker access. A created key is printed once, here, and is nowhere else to be read again.
 */
import { apiClient } from '../../shared/http/api-client.js';
import { parseArgs } from 'node:util';

export type AdminResource = 'tenants' | 'keys' | 'domains';

export interface AdminCommandIo {
  env: Record<string, string | undefined>;
  fetch?: typeof fetch;
  out(line: string): void;
  err(line: string): void;
}

const COMMON = `  --url URL   the send API (default POSTLINE_API_URL, else http://127.0.0.1:8080)
  --key KEY   an API key with the admin scope (default POSTLINE_API_KEY)
  --json      one JSON object per line`;

export const HELP: Record<AdminResource, string> = {
  tenants: `usage: postline tenants create NAME
       postline tenants list [--json]

  create   a tenant (then: postline keys create --tenant NAME --name N)
  list     every tenant: created ones, and those only configured keys name (source config)

${COMMON}
`,
  keys: `usage: postline keys create --tenant T --name N [--scope send|read|admin ...]
       postline keys list [--tenant T] [--json]
       postline keys revoke ID

  create   a key for tenant T (scopes default to send and read); the key is printed once
  list     keys (all tenants, or T's only) with scopes, created and last-used times
  revoke   refuse key ID from now on, on every replica

${COMMON}
`,
  domains: `usage: postline domains add DOMAIN --tenant T
       postline domains list [--tenant T] [--json]
       postline domains remove DOMAIN --tenant T
       postline domains check DOMAIN ...   (see postline domains check --help)

  add      let tenant T send from DOMAIN (*.DOMAIN for its subdomains); once a tenant has a
           domain it may send only from its domains
  list     sender domains (added here, and configured ones: source config)
  remove   take an added domain away from T

${COMMON}
`,
};

class UsageError extends Error {}


const q = (tenant: string | undefined) => (tenant ? `?tenant=${encodeURIComponent(tenant)}` : '');

/** Runs `postline <resource> ...`; resolves with the exit code (0 done, 1 the API refused, 2 usage). */
export async function runAdminCommand(resource: AdminResource, argv: string[], io: AdminCommandIo): Promise<number> {
  try {
    return await run(resource, argv, io);
  } catch (err) {
    io.err(`postline ${resource}: ${(err as Error).message}${err instanceof UsageError ? `\n\n${HELP[resource]}` : ''}`);
    return err instanceof UsageError ? 2 : 1;
  }
}

async function run(resource: AdminResource, argv: string[], io: AdminCommandIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        url: { type: 'string' },
        key: { type: 'string' },
        tenant: { type: 'string' },
        name: { type: 'string' },
        scope: { type: 'string', multiple: true },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  const [action, arg] = positionals;
  if (values.help || !action) {
    io.out(HELP[resource]);
    return values.help ? 0 : 2;
  }
  const key = values.key ?? io.env.POSTLINE_API_KEY;
  if (!key) throw new UsageError('an admin API key is needed: --key or POSTLINE_API_KEY');
  const client = apiClient(values.url ?? io.env.POSTLINE_API_URL ?? 'http://127.0.0.1:8080', key, io.fetch);
  const call = async (method: string, path: string, body?: unknown): Promise<any> => (await client.call(method, path, body)).json;
  const print = (item: Record<string, unknown>, line: string) => io.out(values.json ? JSON.stringify(item) : line);
  const needs = (what: string, v: string | undefined): string => {
    if (!v) throw new UsageError(`${resource} ${action} needs ${what}`);
    return v;
  };
  switch (`${resource} ${action}`) {
    case 'tenants create': {
      const t = await call('POST', '/v1/admin/tenants', { name: needs('a NAME', arg) });
      print(t, `created tenant ${t.name}`);
      return 0;
    }
    case 'tenants list': {
      for (const t of (await call('GET', '/v1/admin/tenants')).items) print(t, `${t.name.padEnd(32)} ${t.source.padEnd(7)} ${t.createdAt ?? ''}`);
      return 0;
    }
    case 'keys create': {
      const body = { tenant: needs('--tenant', values.tenant), name: needs('--name', values.name), ...(values.scope ? { scopes: values.scope } : {}) };
      const k = await call('POST', '/v1/admin/keys', body);
      print(k, `created key ${k.id} for tenant ${k.tenant} (${k.scopes.join(', ')}):\n\n  ${k.key}\n\nIt is shown this once: store it now (it is kept only as a digest).`);
      return 0;
    }
    case 'keys list': {
      for (const k of (await call('GET', `/v1/admin/keys${q(values.tenant)}`)).items) {
        print(k, `${k.id}  ${k.tenant.padEnd(24)} ${k.name.padEnd(20)} ${k.scopes.join(',').padEnd(16)} created ${k.createdAt}  last used ${k.lastUsedAt ?? 'never'}${k.revokedAt ? `  REVOKED ${k.revokedAt}` : ''}`);
      }
      return 0;
    }
    case 'keys revoke': {
      const k = await call('DELETE', `/v1/admin/keys/${encodeURIComponent(needs('an ID', arg))}`);
      print(k, `revoked key ${k.id} of tenant ${k.tenant}`);
      return 0;
    }
    case 'domains add': {
      const d = await call('POST', '/v1/admin/domains', { tenant: needs('--tenant', values.tenant), domain: needs('a DOMAIN', arg) });
      print(d, `tenant ${d.tenant} may send from ${d.domain}`);
      return 0;
    }
    case 'domains list': {
      for (const d of (await call('GET', `/v1/admin/domains${q(values.tenant)}`)).items) print(d, `${d.tenant.padEnd(32)} ${d.domain.padEnd(40)} ${d.source}`);
      return 0;
    }
    case 'domains remove': {
      const tenant = needs('--tenant', values.tenant);
      await call('DELETE', `/v1/admin/domains/${encodeURIComponent(needs('a DOMAIN', arg))}${q(tenant)}`);
      print({ tenant, domain: arg, removed: true }, `removed ${arg} from tenant ${tenant}`);
      return 0;
    }
    default:
      throw new UsageError(`unknown action "${action}"`);
  }
}

/** The entry point of `postline tenants` and `postline keys`. */
export function mainFor(resource: AdminResource): (argv: string[]) => Promise<void> {
  return async (argv) => {
    process.exitCode = await runAdminCommand(resource, argv, { env: process.env, out: (l) => process.stdout.write(`${l}\n`), err: (l) => process.stderr.write(`${l}\n`) });
  };
}
