/**
 * `postline domains check D [--selector S ...] [--address IP ...] [--routes-file F] [--dns host:port] [--dir DIR]`:
 * looks up what receivers will look up for mail from D — SPF for every pool address (those of
 * the routing file, default `dispatcher.routesFile`, and any --address), each DKIM selector
 * (against the local key when the keys directory has it), DMARC, and each address's PTR with
 * forward confirmation, against the EHLO name the routing file gives the address — and prints
 * what is missing or wrong, with the record to publish. Exit 1 when something is wrong
 * (warnings alone exit 0).
 */
import { promises as dns } from 'node:dns';
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { loadPostlineConfig } from '../shared/config.js';
import { ConfigError } from '../shared/config-loader.js';
import { loadRoutingFile, type RoutingFile } from './dispatcher/routing/routes-file.js';
import { normalizeDomain, readKeyDirectory, type KeyTable } from '../shared/dkim/dkim-keys.js';
import { checkSenderDomain, type Finding } from '../shared/dkim/sender-dns-check.js';
import type { CommandIo } from './dkim-command.js';
import { runAdminCommand, type AdminCommandIo } from './admin/admin-command.js';

const HELP = `usage: postline domains add|list|remove ...   (sender domains over the API: postline domains add --help)
       postline domains check DOMAIN [--selector S ...] [--address IP ...] [--routes-file FILE] [--dns host:port ...] [--dir DIR] [--json]

Looks up SPF (is every pool address authorised?), the DKIM record of every selector (given, or
with a key in DIR, default POSTLINE_RENDERER_DKIM_KEYS_DIR: then it must match the key), DMARC,
and each address's PTR with forward confirmation. The pool addresses are those of the routing
file (--routes-file, default POSTLINE_DISPATCHER_ROUTES_FILE; --routes-file '' for none), whose
PTR must name the address's EHLO name, and every --address. Prints what is missing or wrong and
the record to publish; exits 1 when something is wrong. --dns queries these servers instead of
the routing file's dns.servers (or the system's).
`;

const MARK: Record<Finding['level'], string> = { ok: 'ok  ', warning: 'warn', error: 'FAIL' };

function format(f: Finding): string {
  const head = `${MARK[f.level]}  ${f.check.toUpperCase().padEnd(5)} ${f.subject}: ${f.message}`;
  return f.publish ? `${head}\n      publish: ${f.publish.replace(/\n/g, '\n      ')}` : head;
}

/** Every source address of the routing file's pools with its EHLO name (the first, when pools disagree). */
function poolAddresses(file: RoutingFile): Map<string, string> {
  const out = new Map<string, string>();
  for (const pool of Object.values(file.pools)) for (const a of pool.addresses) if (!out.has(a.address)) out.set(a.address, a.ehlo);
  return out;
}

async function keyTable(dir: string | undefined, io: CommandIo): Promise<KeyTable | undefined> {
  if (!dir) return undefined;
  const { table, issues } = await readKeyDirectory(dir);
  for (const i of issues) io.err(`keys directory problem: ${i}`);
  return table;
}

/** Runs the command; resolves with the exit code (0 all good or warnings, 1 something wrong, 2 usage). */
export async function runDomainsCommand(argv: string[], io: CommandIo & Partial<Pick<AdminCommandIo, 'fetch'>>): Promise<number> {
  // add | list | remove: the tenants' sender domains, over the API (services/admin/admin-command.ts).
  if (['add', 'list', 'remove'].includes(argv[0] ?? '')) return runAdminCommand('domains', argv, { ...io, env: io.env ?? process.env });
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        selector: { type: 'string', multiple: true },
        address: { type: 'string', multiple: true },
        dns: { type: 'string', multiple: true },
        'routes-file': { type: 'string' },
        dir: { type: 'string' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    io.err(`postline domains: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help || positionals[0] !== 'check' || positionals.length !== 2) {
    (values.help ? io.out : io.err)(HELP);
    return values.help ? 0 : 2;
  }
  const domain = normalizeDomain(positionals[1]);
  const given = values.address ?? [];
  const badAddress = given.find((a) => isIP(a) === 0);
  if (!domain || badAddress !== undefined) {
    io.err(`postline domains check: ${!domain ? `"${positionals[1]}" is not a domain name` : `--address "${badAddress}" is not an IP address`}`);
    return 2;
  }
  try {
    const config = values.dir === undefined || values['routes-file'] === undefined ? loadPostlineConfig({ env: io.env ?? process.env }) : undefined;
    const routesFile = values['routes-file'] ?? config?.dispatcher.routesFile ?? '';
    let routing: RoutingFile | undefined;
    try {
      routing = routesFile ? loadRoutingFile(routesFile) : undefined;
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      io.err(`postline domains check: ${err.message}`);
      return 2;
    }
    const ehlo = routing ? poolAddresses(routing) : new Map<string, string>();
    const addresses = [...new Set([...ehlo.keys(), ...given])];
    const resolver = new dns.Resolver({ timeout: 3000, tries: 2 });
    const servers = values.dns?.length ? values.dns : routing?.dns.servers;
    if (servers?.length) resolver.setServers(servers);
    const dir = values.dir ?? config?.renderer.dkim.keysDir;
    const findings = await checkSenderDomain((name, type) => resolver.resolve(name, type), (ip) => resolver.reverse(ip), {
      domain,
      selectors: values.selector ?? [],
      addresses,
      ehlo,
      keys: await keyTable(dir || undefined, io),
    });
    for (const f of findings) io.out(values.json ? JSON.stringify(f) : format(f));
    const errors = findings.filter((f) => f.level === 'error').length;
    if (!values.json) io.out(errors === 0 ? `\n${domain}: nothing wrong` : `\n${domain}: ${errors} problem(s)`);
    return errors === 0 ? 0 : 1;
  } catch (err) {
    io.err(`postline domains check: ${(err as Error).message}`);
    return 1;
  }
}

export async function main(argv: string[]): Promise<void> {
  process.exitCode = await runDomainsCommand(argv, { out: (l) => process.stdout.write(`${l}\n`), err: (l) => process.stderr.write(`${l}\n`) });
}
