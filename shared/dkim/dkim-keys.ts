/**
 * DKIM private keys from a directory: `<dir>/<domain>/<selector>.pem` (PEM, PKCS#8 or PKCS#1;
 * RSA of at least 2048 bits or Ed25519), and optionally `<dir>/<domain>/active` naming the
 * selector that signs. Without an `active` file the selector that sorts last signs (date-named
 * selectors such as `s202612` then rotate by adding a file); the others stay loaded so that
 * `postline dkim list` shows them while their DNS records are still published for mail in flight.
 * One selector signs a domain at a time: one signature per message.
 *
 * Names starting with a dot are skipped: that is how a mounted Kubernetes Secret keeps its
 * versions (`..data` → `..2026_12_03_…`), and `<dir>/<domain>` there is a symlink into them.
 * Every problem is a message naming its file; a bad file never throws.
 */
import { createHash, createPrivateKey, type KeyObject } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { domainToASCII } from 'node:url';
import { getDomain } from 'tldts';

export type DkimKeyType = 'rsa' | 'ed25519';

/** RSA keys shorter than this are refused (RFC 8301 §3.2 requires 1024; receivers expect 2048). */
export const MIN_RSA_BITS = 2048;

export interface DkimKey {
  /** The signing domain (d=), IDNA ASCII, lower case. */
  domain: string;
  selector: string;
  type: DkimKeyType;
  /** RSA modulus length; undefined for Ed25519. */
  bits?: number;
  privateKey: KeyObject;
  file: string;
  /** sha256 of the file's bytes: an unchanged file is not parsed again. */
  digest: string;
}

export interface DomainKeys {
  domain: string;
  /** Every loaded selector, sorted by name. */
  keys: DkimKey[];
  /** The key that signs this domain's mail. */
  active: DkimKey;
  /** Why `active` was chosen: the `active` file, or the last selector by name. */
  activeBy: 'active-file' | 'last-selector';
}

export interface KeyTable {
  /** By signing domain. */
  domains: ReadonlyMap<string, DomainKeys>;
}

export const EMPTY_KEY_TABLE: KeyTable = { domains: new Map() };

/** DNS labels (letters, digits, `-`, `_`), dot-separated: what a selector or a domain may be. */
const DNS_NAME = /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

export function isDnsName(name: string): boolean {
  return DNS_NAME.test(name);
}

/** A domain as keys are filed and looked up: IDNA ASCII, lower case, no trailing dot; undefined when not a domain. */
export function normalizeDomain(name: string): string | undefined {
  const ascii = domainToASCII(name.replace(/\.$/, '')).toLowerCase();
  return ascii && isDnsName(ascii) && ascii.includes('.') ? ascii : undefined;
}

/** Parses one key file's bytes; `error` names the file and says what is wrong. */
export function parseDkimKey(pem: Buffer | string, file: string, domain: string, selector: string): { key?: DkimKey; error?: string } {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: pem, format: 'pem' });
  } catch (err) {
    return { error: `${file}: not a readable unencrypted PEM private key (${(err as Error).message})` };
  }
  const type = privateKey.asymmetricKeyType;
  const digest = createHash('sha256').update(pem).digest('hex');
  if (type === 'ed25519') return { key: { domain, selector, type, privateKey, file, digest } };
  if (type !== 'rsa') return { error: `${file}: a ${type ?? 'unknown'} key; DKIM keys are RSA (${MIN_RSA_BITS} bits or more) or Ed25519` };
  const bits = privateKey.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < MIN_RSA_BITS) return { error: `${file}: an RSA key of ${bits} bits is too weak; use ${MIN_RSA_BITS} bits or more (or Ed25519)` };
  return { key: { domain, selector, type, bits, privateKey, file, digest } };
}

async function readDomainDir(dir: string, domain: string, previous: KeyTable, issues: string[]): Promise<DomainKeys | undefined> {
  const names = (await fs.readdir(dir)).filter((n) => !n.startsWith('.')).sort();
  const keys: DkimKey[] = [];
  for (const name of names.filter((n) => n.endsWith('.pem'))) {
    const file = path.join(dir, name);
    const selector = name.slice(0, -'.pem'.length).toLowerCase();
    if (!isDnsName(selector)) {
      issues.push(`${file}: "${selector}" is not a valid selector (DNS labels: letters, digits, "-", "_")`);
      continue;
    }
    let pem: Buffer;
    try {
      pem = await fs.readFile(file);
    } catch (err) {
      issues.push(`${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      continue;
    }
    const digest = createHash('sha256').update(pem).digest('hex');
    const known = previous.domains.get(domain)?.keys.find((k) => k.selector === selector && k.digest === digest);
    if (known) {
      keys.push({ ...known, file });
      continue;
    }
    const parsed = parseDkimKey(pem, file, domain, selector);
    if (parsed.key) {
      keys.push(parsed.key);
      continue;
    }
    // A key that turned bad in place keeps signing with its last good version until fixed.
    const before = previous.domains.get(domain)?.keys.find((k) => k.selector === selector);
    issues.push(before ? `${parsed.error!}; keeping the key loaded before` : parsed.error!);
    if (before) keys.push(before);
  }
  if (keys.length === 0) return undefined;
  let activeName: string | undefined;
  try {
    activeName = (await fs.readFile(path.join(dir, 'active'), 'utf8')).trim().toLowerCase();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') issues.push(`${path.join(dir, 'active')}: cannot be read (${(err as NodeJS.ErrnoException).code})`);
  }
  if (activeName !== undefined) {
    const active = keys.find((k) => k.selector === activeName);
    if (active) return { domain, keys, active, activeBy: 'active-file' };
    issues.push(`${path.join(dir, 'active')}: names selector "${activeName}", which has no usable key in ${dir}; signing with "${keys[keys.length - 1].selector}"`);
  }
  return { domain, keys, active: keys[keys.length - 1], activeBy: 'last-selector' };
}

/**
 * Reads the whole directory. A key whose file is unchanged since `previous` is reused as is
 * (parsed once). Problems are returned, never thrown, except when `dir` itself cannot be read.
 */
export async function readKeyDirectory(dir: string, previous: KeyTable = EMPTY_KEY_TABLE): Promise<{ table: KeyTable; issues: string[] }> {
  const issues: string[] = [];
  const domains = new Map<string, DomainKeys>();
  const entries = (await fs.readdir(dir)).filter((n) => !n.startsWith('.')).sort();
  for (const name of entries) {
    const sub = path.join(dir, name);
    let stat;
    try {
      stat = await fs.stat(sub);
    } catch {
      continue; // a dangling symlink mid-swap: the rescan after it sees the new version
    }
    if (!stat.isDirectory()) continue;
    const domain = normalizeDomain(name);
    if (!domain) {
      issues.push(`${sub}: "${name}" is not a domain name`);
      continue;
    }
    try {
      const keys = await readDomainDir(sub, domain, previous, issues);
      if (keys) domains.set(domain, keys);
    } catch (err) {
      issues.push(`${sub}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  }
  return { table: { domains }, issues };
}

/**
 * The domains whose key may sign mail from `fromDomain`, most specific first: the domain
 * itself, then its parents down to the registrable domain (`mail.eu.acme.com` → `eu.acme.com`
 * → `acme.com`), which DMARC's relaxed alignment accepts. Never a public suffix (private ones
 * such as `github.io` included).
 */
export function signingCandidates(fromDomain: string): string[] {
  const domain = fromDomain.toLowerCase().replace(/\.$/, '');
  // Private suffixes count (github.io, …), as in mailauth's DMARC alignment: d= must align there.
  const registrable = getDomain(domain, { allowPrivateDomains: true }) ?? domain;
  const out = [domain];
  let d = domain;
  while (d !== registrable && d.endsWith(`.${registrable}`)) {
    d = d.slice(d.indexOf('.') + 1);
    out.push(d);
  }
  return out;
}

/** The key that signs mail from `fromDomain` (IDNA ASCII), or undefined. Pure. */
export function keyFor(table: KeyTable, fromDomain: string): DkimKey | undefined {
  for (const d of signingCandidates(fromDomain)) {
    const found = table.domains.get(d);
    if (found) return found.active;
  }
  return undefined;
}
