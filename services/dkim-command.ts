/**
 * `postline dkim keygen | list`: DKIM keys in the keys directory the renderer signs with
 * (`renderer.dkim.keysDir`, or `--dir`).
 *
 * keygen writes `<dir>/<domain>/<selector>.pem` (PKCS#8 PEM, mode 0600; never over an existing
 * file without --force) and prints the TXT record to publish. list prints every domain and
 * selector with its type and which one signs, and every problem the renderer would report.
 */
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadPostlineConfig } from '../shared/config.js';
import { MIN_RSA_BITS, isDnsName, normalizeDomain, readKeyDirectory, type DkimKeyType } from '../shared/dkim/dkim-keys.js';
import { dkimRecordName, dkimRecordValue, zoneLine } from '../shared/dkim/dkim-record.js';

const HELP = `usage: postline dkim keygen --domain D --selector S [--type rsa|ed25519] [--bits 2048] [--dir DIR] [--force]
       postline dkim list [--dir DIR] [--json]

keygen  writes DIR/D/S.pem (mode 0600) and prints the DNS TXT record S._domainkey.D to publish.
        --type rsa (default, ${MIN_RSA_BITS} bits or more) or ed25519 (not every receiver
        verifies Ed25519 yet, and one selector signs a domain at a time).
list    every domain and selector in DIR, its type, and which selector signs.

DIR defaults to POSTLINE_RENDERER_DKIM_KEYS_DIR. Which selector signs a domain: the one named
in DIR/D/active, else the last one by name. Publish the TXT record before a new selector signs.
`;

export interface CommandIo {
  out(line: string): void;
  err(line: string): void;
  env?: NodeJS.ProcessEnv;
}

export interface KeygenOptions {
  dir: string;
  domain: string;
  selector: string;
  type: DkimKeyType;
  bits: number;
  force: boolean;
}

/** Writes the key; resolves with the file and the TXT record. Throws a message for the user on bad input. */
export async function keygen(o: KeygenOptions): Promise<{ file: string; name: string; value: string }> {
  const domain = normalizeDomain(o.domain);
  if (!domain) throw new Error(`--domain "${o.domain}" is not a domain name`);
  const selector = o.selector.toLowerCase();
  if (!isDnsName(selector)) throw new Error(`--selector "${o.selector}" is not a valid selector (DNS labels: letters, digits, "-", "_")`);
  if (o.type === 'rsa' && (!Number.isInteger(o.bits) || o.bits < MIN_RSA_BITS || o.bits > 8192)) throw new Error(`--bits must be ${MIN_RSA_BITS} to 8192 (got ${o.bits})`);
  const { privateKey } = o.type === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: o.bits }) : generateKeyPairSync('ed25519');
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const domainDir = path.join(o.dir, domain);
  await fs.mkdir(domainDir, { recursive: true, mode: 0o700 });
  const file = path.join(domainDir, `${selector}.pem`);
  try {
    await fs.writeFile(file, pem, { mode: 0o600, flag: o.force ? 'w' : 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new Error(`${file} exists; choose another selector, or pass --force to replace it`);
    throw err;
  }
  await fs.chmod(file, 0o600); // an existing file replaced with --force keeps its old mode otherwise
  return { file, name: dkimRecordName(selector, domain), value: dkimRecordValue(privateKey, o.type) };
}

async function runKeygen(values: Record<string, unknown>, dir: string, io: CommandIo): Promise<number> {
  const type = (values.type as string | undefined) ?? 'rsa';
  if (type !== 'rsa' && type !== 'ed25519') throw new Error(`--type must be rsa or ed25519 (got "${type}")`);
  if (!values.domain || !values.selector) throw new Error('keygen needs --domain and --selector');
  const bits = Number((values.bits as string | undefined) ?? MIN_RSA_BITS);
  const made = await keygen({ dir, domain: String(values.domain), selector: String(values.selector), type, bits, force: Boolean(values.force) });
  io.out(`wrote ${made.file} (${type === 'rsa' ? `rsa ${bits}` : 'ed25519'}, mode 0600)`);
  io.out('');
  io.out(`publish this TXT record at ${made.name}:`);
  io.out('');
  io.out(zoneLine(made.name, made.value));
  const { table } = await readKeyDirectory(dir);
  const d = table.domains.get(normalizeDomain(String(values.domain))!);
  if (d && d.active.file === made.file && d.keys.length > 1) {
    io.out('');
    io.out(`note: this selector now signs ${d.domain} (${d.activeBy === 'active-file' ? 'named in active' : 'last by name'}) as soon as the renderer reads it; publish the record first, or name the current selector in ${path.join(path.dirname(made.file), 'active')}`);
  }
  return 0;
}

async function runList(dir: string, json: boolean, io: CommandIo): Promise<number> {
  const { table, issues } = await readKeyDirectory(dir);
  const rows = [...table.domains.values()].flatMap((d) =>
    d.keys.map((k) => ({ domain: d.domain, selector: k.selector, type: k.type, bits: k.bits, signs: k === d.active, record: dkimRecordName(k.selector, d.domain), file: k.file })),
  );
  if (json) for (const r of rows) io.out(JSON.stringify(r));
  else {
    io.out(`${'domain'.padEnd(28)} ${'selector'.padEnd(16)} ${'type'.padEnd(12)} signs  file`);
    for (const r of rows) io.out(`${r.domain.padEnd(28)} ${r.selector.padEnd(16)} ${(r.bits ? `rsa ${r.bits}` : r.type).padEnd(12)} ${(r.signs ? 'yes' : '').padEnd(6)} ${r.file}`);
  }
  for (const i of issues) io.err(`problem: ${i}`);
  return issues.length > 0 ? 1 : 0;
}

/** Runs the command; resolves with the exit code (1: failed or problems found, 2: usage). */
export async function runDkimCommand(argv: string[], io: CommandIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        domain: { type: 'string' },
        selector: { type: 'string' },
        type: { type: 'string' },
        bits: { type: 'string' },
        dir: { type: 'string' },
        force: { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    io.err(`postline dkim: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const action = positionals[0];
  if (values.help || (action !== 'keygen' && action !== 'list') || positionals.length > 1) {
    (values.help ? io.out : io.err)(HELP);
    return values.help ? 0 : 2;
  }
  try {
    const dir = values.dir ?? loadPostlineConfig({ env: io.env ?? process.env }).renderer.dkim.keysDir;
    if (!dir) throw new Error('no keys directory: pass --dir or set POSTLINE_RENDERER_DKIM_KEYS_DIR');
    return action === 'keygen' ? await runKeygen(values, dir, io) : await runList(dir, values.json, io);
  } catch (err) {
    io.err(`postline dkim ${action}: ${(err as Error).message}`);
    return 1;
  }
}

export async function main(argv: string[]): Promise<void> {
  process.exitCode = await runDkimCommand(argv, { out: (l) => process.stdout.write(`${l}\n`), err: (l) => process.stderr.write(`${l}\n`) });
}
