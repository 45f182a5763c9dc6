/**
 * The fake internet's DNS data and how a query is answered from it — pure, no sockets.
 *
 * Names are stored lower-case without a trailing dot. Each (name, type) holds one RRset with one
 * TTL; setting it again replaces it. Answers follow what a recursive resolver hands a stub client:
 * CNAME chains are followed inside the answer, a name with no records of the asked type is
 * NOERROR with no answers (NODATA), an unknown name is NXDOMAIN, and a CNAME loop (or a chain
 * longer than {@link MAX_CNAME_CHAIN}) is SERVFAIL, as unbound and BIND report it.
 */
import net from 'node:net';

/** Record types the fake DNS serves. */
export type RecordType = 'A' | 'AAAA' | 'MX' | 'TXT' | 'CNAME' | 'PTR';

/** Record data as dns2 encodes it (and as Node's resolver decodes it back). */
export type RecordData =
  | { type: 'A' | 'AAAA'; address: string }
  | { type: 'MX'; exchange: string; priority: number }
  | { type: 'TXT'; data: string[] }
  | { type: 'CNAME' | 'PTR'; domain: string };

export interface RRset {
  ttl: number;
  records: RecordData[];
}

/** One resource record of an answer. */
export type AnswerRecord = RecordData & { name: string; ttl: number };

export type Rcode = 'NOERROR' | 'NXDOMAIN' | 'SERVFAIL';

export interface Answer {
  rcode: Rcode;
  answers: AnswerRecord[];
}

/** Longest CNAME chain followed before answering SERVFAIL. */
export const MAX_CNAME_CHAIN = 8;

/** Lower-case, no trailing dot. */
export function normalizeName(name: string): string {
  return name.trim().toLowerCase().replace(/\.$/, '');
}

/** The PTR name of an IPv4 or IPv6 address (`127.0.0.2` → `2.0.0.127.in-addr.arpa`). */
export function reverseName(ip: string): string {
  if (net.isIPv4(ip)) return `${ip.split('.').reverse().join('.')}.in-addr.arpa`;
  if (net.isIPv6(ip)) {
    const [head, tail = ''] = ip.split('::');
    const groups = (s: string): string[] => (s ? s.split(':') : []);
    const h = groups(head);
    const t = groups(tail);
    const full = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t].map((g) => g.padStart(4, '0')).join('');
    return `${full.split('').reverse().join('.')}.ip6.arpa`;
  }
  throw new Error(`reverseName: ${ip} is not an IP address`);
}

/**
 * A TXT value as DNS character-strings: one string is split into 255-byte chunks (a DKIM
 * RSA-2048 key does not fit one), which resolvers hand back as an array that readers join.
 */
export function txtChunks(value: string | string[]): string[] {
  if (Array.isArray(value)) return value;
  const bytes = Buffer.from(value, 'utf8');
  const chunks: string[] = [];
  for (let i = 0; i < bytes.length; i += 255) chunks.push(bytes.subarray(i, i + 255).toString('utf8'));
  return chunks.length ? chunks : [''];
}

/** The record store; see the file comment for how it answers. */
export class Zone {
  private readonly names = new Map<string, Map<RecordType, RRset>>();
  private readonly bare = new Set<string>(); // names that exist without records

  /** Replaces the RRset of `type` at `name` (an empty list removes it). */
  set(name: string, type: RecordType, records: RecordData[], ttl: number): void {
    const key = normalizeName(name);
    if (!records.length) return this.remove(key, type);
    if (type === 'CNAME' && records.length !== 1) throw new Error(`CNAME ${key}: exactly one target`);
    const types = this.names.get(key) ?? new Map<RecordType, RRset>();
    types.set(type, { ttl, records });
    this.names.set(key, types);
  }

  /** Makes `name` exist with no records: every type is NODATA rather than NXDOMAIN. */
  touch(name: string): void {
    this.bare.add(normalizeName(name));
  }

  /** Removes one RRset, or every record of the name (and its existence) when no type is given. */
  remove(name: string, type?: RecordType): void {
    const key = normalizeName(name);
    if (!type) {
      this.names.delete(key);
      this.bare.delete(key);
      return;
    }
    const types = this.names.get(key);
    types?.delete(type);
    if (types && !types.size) this.names.delete(key);
  }

  clear(): void {
    this.names.clear();
    this.bare.clear();
  }

  get(name: string, type: RecordType): RRset | undefined {
    return this.names.get(normalizeName(name))?.get(type);
  }

  /** A name exists when it has records, or names below it do (an empty non-terminal). */
  exists(name: string): boolean {
    const key = normalizeName(name);
    if (this.names.has(key) || this.bare.has(key)) return true;
    for (const other of this.names.keys()) if (other.endsWith(`.${key}`)) return true;
    return false;
  }

  /** What a recursive resolver would answer for (name, type). */
  answer(name: string, type: RecordType): Answer {
    const answers: AnswerRecord[] = [];
    const seen = new Set<string>();
    let current = normalizeName(name);
    for (;;) {
      const own = this.get(current, type);
      if (own) return { rcode: 'NOERROR', answers: [...answers, ...own.records.map((r) => ({ ...r, name: current, ttl: own.ttl }))] };
      const alias = type === 'CNAME' ? undefined : this.get(current, 'CNAME');
      if (!alias) return { rcode: this.exists(current) ? 'NOERROR' : 'NXDOMAIN', answers };
      seen.add(current);
      const target = alias.records[0] as { domain: string };
      answers.push({ ...alias.records[0], name: current, ttl: alias.ttl });
      current = normalizeName(target.domain);
      if (seen.has(current) || seen.size > MAX_CNAME_CHAIN) return { rcode: 'SERVFAIL', answers: [] };
    }
  }
}
