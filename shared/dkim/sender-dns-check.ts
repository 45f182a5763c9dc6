/**
 * What `postline domains check` looks up for a sending domain: SPF (every pool address
 * authorised, by mailauth's SPF evaluation), each DKIM selector's TXT record (present, and the
 * local key's public key when the key is in the keys directory), DMARC (`_dmarc.<domain>`, or
 * the organizational domain's, by mailauth's lookup) and, for each address, its PTR with forward
 * confirmation (FCrDNS) — and, for a pool address with an EHLO name (the routing file's), that
 * the PTR names the EHLO name and the EHLO name resolves back to the address, as receivers
 * compare them. Each finding says what to publish when something is missing or wrong.
 * DNS goes through the `resolve` function given (`dns.promises.Resolver#resolve` in the command).
 */
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import { spf } from 'mailauth/lib/spf/index.js';
import type { DkimKey, KeyTable } from './dkim-keys.js';
import { signingCandidates } from './dkim-keys.js';
import { dkimRecordName, dkimRecordValue, parseTagList, publicKeyValue, zoneLine } from './dkim-record.js';

const require = createRequire(import.meta.url);
const getDmarcRecord = require('mailauth/lib/dmarc/get-dmarc-record.js') as (domain: string, resolver: Resolve) => Promise<false | { p?: string; rr: string; isOrgRecord: boolean }>;

/** `(name, type) => records`, the shape of `dns.promises.resolve`. */
export type Resolve = (name: string, type: string) => Promise<unknown>;

export interface Finding {
  check: 'spf' | 'dkim' | 'dmarc' | 'ptr';
  /** The name or address the finding is about. */
  subject: string;
  level: 'ok' | 'warning' | 'error';
  message: string;
  /** A zone-file line to publish (or to change to) when something is missing or wrong. */
  publish?: string;
}

export interface CheckRequest {
  domain: string;
  /** Selectors to check beside those of local keys. */
  selectors: string[];
  /** Pool (source) addresses. */
  addresses: string[];
  /** The EHLO name each address sends (from the routing file's pools); its PTR must name it. */
  ehlo?: ReadonlyMap<string, string>;
  /** Local keys (the keys directory), when available. */
  keys?: KeyTable;
}

const NOT_FOUND = new Set(['ENOTFOUND', 'ENODATA', 'NXDOMAIN']);

/** TXT strings joined per record; [] when the name has none; throws on a lookup failure. */
async function txt(resolve: Resolve, name: string): Promise<string[]> {
  try {
    return ((await resolve(name, 'TXT')) as string[][]).map((r) => r.join(''));
  } catch (err) {
    if (NOT_FOUND.has((err as NodeJS.ErrnoException).code ?? '')) return [];
    throw err;
  }
}

const failure = (check: Finding['check'], subject: string, err: unknown): Finding => ({
  check,
  subject,
  level: 'error',
  message: `the lookup failed (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); check again`,
});

function spfMechanism(address: string): string {
  return `${isIP(address) === 6 ? 'ip6' : 'ip4'}:${address}`;
}

export async function checkSpf(resolve: Resolve, domain: string, addresses: string[]): Promise<Finding[]> {
  let records: string[];
  try {
    records = (await txt(resolve, domain)).filter((r) => /^v=spf1(\s|$)/i.test(r.trim()));
  } catch (err) {
    return [failure('spf', domain, err)];
  }
  const suggested = `v=spf1 ${addresses.map(spfMechanism).join(' ')}${addresses.length ? ' ' : ''}-all`;
  if (records.length === 0) return [{ check: 'spf', subject: domain, level: 'error', message: 'no SPF record', publish: zoneLine(domain, suggested) }];
  if (records.length > 1) return [{ check: 'spf', subject: domain, level: 'error', message: `${records.length} SPF records (receivers treat that as a permanent error); merge them into one`, publish: zoneLine(domain, suggested) }];
  const out: Finding[] = [{ check: 'spf', subject: domain, level: 'ok', message: `record: ${records[0]}` }];
  if (addresses.length === 0) out.push({ check: 'spf', subject: domain, level: 'warning', message: 'no pool addresses (none in the routing file, no --address): only the record was looked up' });
  for (const address of addresses) {
    const result = await spf({ sender: `postmaster@${domain}`, ip: address, helo: domain, mta: 'postline-domains-check', resolver: resolve as never });
    const verdict = result.status.result;
    if (verdict === 'pass') out.push({ check: 'spf', subject: address, level: 'ok', message: 'authorised (pass)' });
    else {
      const fixed = records[0].replace(/\s+([~?+-]?all|redirect=\S+)\s*$/i, ` ${spfMechanism(address)} $1`);
      out.push({
        check: 'spf',
        subject: address,
        level: 'error',
        message: `not authorised: ${verdict}${result.status.comment ? ` (${result.status.comment})` : ''}`,
        publish: zoneLine(domain, fixed === records[0] ? `${records[0]} ${spfMechanism(address)}` : fixed),
      });
    }
  }
  return out;
}

/** The local keys that may sign `domain`'s mail: those of the domain (or the parent) `keyFor` would use. */
function localKeys(keys: KeyTable | undefined, domain: string): DkimKey[] {
  if (!keys) return [];
  for (const d of signingCandidates(domain)) {
    const found = keys.domains.get(d);
    if (found) return found.keys;
  }
  return [];
}

async function checkSelector(resolve: Resolve, domain: string, selector: string, key: DkimKey | undefined): Promise<Finding> {
  const name = dkimRecordName(selector, domain);
  const wanted = key ? dkimRecordValue(key.privateKey, key.type) : undefined;
  const publish = wanted ? zoneLine(name, wanted) : undefined;
  let records: string[];
  try {
    records = (await txt(resolve, name)).filter((r) => /(^|;)\s*p=/i.test(r));
  } catch (err) {
    return failure('dkim', name, err);
  }
  if (records.length === 0) return { check: 'dkim', subject: name, level: 'error', message: `no DKIM record${key ? ` for the key ${key.file}` : ''}`, publish };
  const tags = parseTagList(records[0]);
  const p = tags.get('p') ?? '';
  if (!p) return { check: 'dkim', subject: name, level: 'error', message: 'the record has an empty p= (the key is revoked)', publish };
  if (key) {
    if (p !== publicKeyValue(key.privateKey)) return { check: 'dkim', subject: name, level: 'error', message: `the published key is not the public key of ${key.file}`, publish };
    if ((tags.get('k') ?? 'rsa').toLowerCase() !== key.type) return { check: 'dkim', subject: name, level: 'error', message: `k=${tags.get('k') ?? 'rsa (default)'} but ${key.file} is ${key.type}`, publish };
    return { check: 'dkim', subject: name, level: 'ok', message: `matches ${key.file} (${key.type}${key.bits ? ` ${key.bits}` : ''})` };
  }
  return { check: 'dkim', subject: name, level: 'ok', message: `published (k=${tags.get('k') ?? 'rsa'}); no local key to compare with` };
}

export async function checkDkim(resolve: Resolve, domain: string, selectors: string[], keys: KeyTable | undefined): Promise<Finding[]> {
  const local = localKeys(keys, domain);
  const checks = new Map<string, { domain: string; selector: string; key?: DkimKey }>();
  for (const k of local) checks.set(dkimRecordName(k.selector, k.domain), { domain: k.domain, selector: k.selector, key: k });
  for (const s of selectors) {
    const name = dkimRecordName(s.toLowerCase(), domain);
    if (!checks.has(name)) checks.set(name, { domain, selector: s.toLowerCase() });
  }
  if (checks.size === 0) {
    return [{ check: 'dkim', subject: domain, level: 'error', message: 'no selector to check: no local key signs this domain; pass --selector S (or --dir with the keys directory)' }];
  }
  return Promise.all([...checks.values()].map((c) => checkSelector(resolve, c.domain, c.selector, c.key)));
}

export async function checkDmarc(resolve: Resolve, domain: string): Promise<Finding[]> {
  const name = `_dmarc.${domain}`;
  const suggested = zoneLine(name, `v=DMARC1; p=none; rua=mailto:dmarc-reports@${domain}`);
  let record;
  try {
    record = await getDmarcRecord(domain, resolve);
  } catch (err) {
    return [failure('dmarc', name, err)];
  }
  if (!record) return [{ check: 'dmarc', subject: name, level: 'error', message: 'no DMARC record (Gmail and Yahoo require one from bulk senders); start with p=none and read the reports', publish: suggested }];
  const where = record.isOrgRecord ? ' (the organizational domain\'s record)' : '';
  const policy = (record.p ?? '').toLowerCase();
  if (!['none', 'quarantine', 'reject'].includes(policy)) return [{ check: 'dmarc', subject: name, level: 'error', message: `policy p=${record.p ?? '(missing)'} is not none, quarantine or reject${where}`, publish: suggested }];
  if (policy === 'none') return [{ check: 'dmarc', subject: name, level: 'warning', message: `p=none${where}: receivers only report; move to quarantine, then reject, once the reports are clean` }];
  return [{ check: 'dmarc', subject: name, level: 'ok', message: `p=${policy}${where}` }];
}

/** `127.0.0.2` → `2.0.0.127.in-addr.arpa`; IPv6 → its nibbles under `ip6.arpa`. */
function reverseName(address: string): string {
  if (isIP(address) === 4) return `${address.split('.').reverse().join('.')}.in-addr.arpa`;
  const [head, tail = ''] = address.split('::');
  const groups = (s: string) => (s ? s.split(':') : []);
  const h = groups(head);
  const t = groups(tail);
  const full = [...h, ...Array(address.includes('::') ? 8 - h.length - t.length : 0).fill('0'), ...t].map((g) => g.padStart(4, '0'));
  return `${full.join('').split('').reverse().join('.')}.ip6.arpa`;
}

const sameHost = (a: string, b: string): boolean => a.toLowerCase().replace(/\.$/, '') === b.toLowerCase().replace(/\.$/, '');

/**
 * The PTR of a pool address against the EHLO name it sends: the PTR must name it and the name
 * must resolve back to the address (forward-confirmed reverse DNS matching the EHLO).
 */
async function checkPtrAgainstEhlo(resolve: Resolve, address: string, names: string[], ehlo: string): Promise<Finding> {
  const type = isIP(address) === 6 ? 'AAAA' : 'A';
  let forward: string[] = [];
  try {
    forward = (await resolve(ehlo, type)) as string[];
  } catch (err) {
    if (!NOT_FOUND.has((err as NodeJS.ErrnoException).code ?? '')) return failure('ptr', address, err);
  }
  const named = names.some((n) => sameHost(n, ehlo));
  const back = forward.includes(address);
  if (named && back) return { check: 'ptr', subject: address, level: 'ok', message: `PTR ${ehlo}, the EHLO name, which resolves back (forward-confirmed)` };
  const publish = [...(named ? [] : [`${reverseName(address)}. IN PTR ${ehlo}.`]), ...(back ? [] : [`${ehlo}. IN ${type} ${address}`])].join('\n');
  const problems = [
    ...(named ? [] : [names.length === 0 ? 'no PTR record' : `PTR ${names.join(', ')} is not the EHLO name ${ehlo}`]),
    ...(back ? [] : [`the EHLO name ${ehlo} does not resolve to ${address}${forward.length ? ` (${type} ${forward.join(', ')})` : ''}`]),
  ];
  const owner = named ? '' : ' (the PTR is set by the owner of the address: your provider)';
  return { check: 'ptr', subject: address, level: 'error', message: `${problems.join('; ')}${owner}`, publish };
}

export async function checkPtr(resolve: Resolve, reverse: (ip: string) => Promise<string[]>, address: string, ehlo?: string): Promise<Finding> {
  let names: string[];
  try {
    names = await reverse(address);
  } catch (err) {
    if (!NOT_FOUND.has((err as NodeJS.ErrnoException).code ?? '')) return failure('ptr', address, err);
    names = [];
  }
  if (ehlo) return checkPtrAgainstEhlo(resolve, address, names, ehlo);
  if (names.length === 0) return { check: 'ptr', subject: address, level: 'error', message: 'no PTR record: ask the owner of the address (your provider) for a PTR to the EHLO name, and an A/AAAA record of that name back to it' };
  const type = isIP(address) === 6 ? 'AAAA' : 'A';
  for (const name of names) {
    try {
      const forward = (await resolve(name, type)) as string[];
      if (forward.includes(address)) return { check: 'ptr', subject: address, level: 'ok', message: `PTR ${name}, which resolves back (forward-confirmed)` };
    } catch (err) {
      if (!NOT_FOUND.has((err as NodeJS.ErrnoException).code ?? '')) return failure('ptr', address, err);
    }
  }
  return {
    check: 'ptr',
    subject: address,
    level: 'error',
    message: `PTR ${names.join(', ')} does not resolve back to ${address} (no forward confirmation)`,
    publish: `${names[0]}. IN ${type} ${address}`,
  };
}

/** Every finding for the domain, in order: SPF, DKIM, DMARC, PTR. */
export async function checkSenderDomain(resolve: Resolve, reverse: (ip: string) => Promise<string[]>, req: CheckRequest): Promise<Finding[]> {
  const [spfFindings, dkim, dmarc, ptr] = await Promise.all([
    checkSpf(resolve, req.domain, req.addresses),
    checkDkim(resolve, req.domain, req.selectors, req.keys),
    checkDmarc(resolve, req.domain),
    Promise.all(req.addresses.map((a) => checkPtr(resolve, reverse, a, req.ehlo?.get(a)))),
  ]);
  return [...spfFindings, ...dkim, ...dmarc, ...ptr];
}
