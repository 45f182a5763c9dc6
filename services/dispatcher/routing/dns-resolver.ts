/**
 * DNS for direct delivery: MX, A, AAAA and TXT lookups against configured servers over UDP (a
 * truncated answer is asked again over TCP; `dns-wire.ts`), every answer cached for its TTL
 * clamped to [floor, ceiling], negative answers (NXDOMAIN, no records) for the floor, and
 * concurrent lookups of one name sharing one query — so sending to a domain costs one lookup
 * per TTL, not one per message. Failures are typed: NXDOMAIN is an answer (the caller decides
 * it is permanent); SERVFAIL, REFUSED, timeouts and unreadable replies are DnsTempError
 * (retriable, DNS_TEMPFAIL). Every query is bounded by the timeout: nothing here can hang.
 *
 * Emits 'query' (type, outcome) per query sent and 'cache' (type, 'hit' | 'miss' | 'shared')
 * per lookup, for metrics.
 */
import { EventEmitter } from 'node:events';
import { PermanentError, TransientError } from '../../../shared/errors.js';
import { parseHostPort } from '../route.js';
import type { MxAnswer } from './mx-plan.js';
import { NOERROR, NXDOMAIN, TYPE_CODE, tcpQuery, udpQuery, type RecordType, type ResourceRecord, type WireReply } from './dns-wire.js';

export type { RecordType, ResourceRecord } from './dns-wire.js';

/** A lookup that may work later: SERVFAIL, REFUSED, a timeout, an unreadable or truncated reply. */
export class DnsTempError extends TransientError {
  constructor(
    readonly host: string,
    readonly type: RecordType,
    readonly outcome: string,
    message: string,
    opts: { cause?: unknown } = {},
  ) {
    super('DNS_TEMPFAIL', `DNS ${type} ${host}: ${message}`, opts);
  }
}

/** An answer that will not change by asking again: a CNAME loop or a chain too long. */
export class DnsPermanentError extends PermanentError {}

export interface DnsResolverOptions {
  /** `host[:port]` (IPv6 as `[addr]:port`); tried in order when one fails. */
  servers: string[];
  /** Per query and server. */
  timeoutMs: number;
  ttlFloorSeconds: number;
  ttlCeilingSeconds: number;
  /** CNAMEs followed for an address lookup before giving up. */
  maxCnameDepth?: number;
  /** Answers kept at most; the oldest go first (default 100,000). */
  maxEntries?: number;
  now?: () => number;
}

interface Answer {
  status: 'ok' | 'nxdomain';
  records: ResourceRecord[];
}

interface CacheEntry {
  answer: Answer;
  expiresAt: number;
}

const RCODE_NAMES: Record<number, string> = { 1: 'formerr', 2: 'servfail', 4: 'notimp', 5: 'refused' };
const sameName = (a: string, b: string): boolean => a.toLowerCase().replace(/\.$/, '') === b.toLowerCase().replace(/\.$/, '');

export class DnsResolver extends EventEmitter {
  private readonly cache = new Map<string, CacheEntry>();
  private readonly inFlight = new Map<string, Promise<Answer>>();
  private readonly servers: Array<{ host: string; port: number }>;
  private readonly now: () => number;

  constructor(private readonly opts: DnsResolverOptions) {
    super();
    if (opts.servers.length === 0) throw new Error('DnsResolver: no DNS servers');
    this.servers = opts.servers.map((s) => parseHostPort(s, 53));
    this.now = opts.now ?? Date.now;
  }

  /** The records of `name`/`type`, from the cache while fresh; NXDOMAIN is an answer, not an error. */
  async query(name: string, type: RecordType): Promise<Answer> {
    const key = `${type} ${name.toLowerCase()}`;
    const cached = this.cache.get(key);
    if (cached && cached.expiresAt > this.now()) {
      this.emit('cache', type, 'hit');
      return cached.answer;
    }
    const shared = this.inFlight.get(key);
    if (shared) {
      this.emit('cache', type, 'shared');
      return shared;
    }
    this.emit('cache', type, 'miss');
    const p = this.ask(name, type).then((answer) => {
      this.cache.delete(key); // re-inserted last: the Map's order is the age order
      this.cache.set(key, { answer, expiresAt: this.now() + this.ttlOf(answer, type) * 1000 });
      if (this.cache.size > (this.opts.maxEntries ?? 100_000)) this.cache.delete(this.cache.keys().next().value!);
      return answer;
    });
    this.inFlight.set(key, p);
    try {
      return await p;
    } finally {
      this.inFlight.delete(key);
    }
  }

  /** The MX answer of a domain (for `planMx`). */
  async mx(domain: string): Promise<MxAnswer> {
    const answer = await this.query(domain, 'MX');
    if (answer.status === 'nxdomain') return { kind: 'nxdomain' };
    const records = answer.records.filter((r) => r.type === TYPE_CODE.MX && typeof r.exchange === 'string' && sameName(r.name, domain));
    if (records.length === 0) return { kind: 'none' };
    return { kind: 'records', records: records.map((r) => ({ exchange: r.exchange!, priority: r.priority ?? 0 })) };
  }

  /**
   * The addresses of a host (A or AAAA), following CNAMEs up to the depth limit; [] when the
   * host has none or does not exist. A CNAME loop or too long a chain is a DnsPermanentError.
   */
  async addresses(host: string, type: 'A' | 'AAAA'): Promise<string[]> {
    const maxDepth = this.opts.maxCnameDepth ?? 8;
    const seen = new Set<string>();
    let current = host;
    let answer = await this.query(current, type);
    for (let depth = 0; ; ) {
      // The answer may carry the whole chain (CNAME then addresses): walk it before asking again.
      let hop: string | undefined;
      for (;;) {
        const found = answer.records.filter((r) => r.type === TYPE_CODE[type] && r.address && sameName(r.name, current)).map((r) => r.address!);
        if (found.length > 0) return found;
        const cname = answer.records.find((r) => r.type === TYPE_CODE.CNAME && r.domain && sameName(r.name, current));
        if (!cname) break;
        const key = current.toLowerCase();
        if (seen.has(key)) throw new DnsPermanentError('DNS_CNAME_LOOP', `${host}: CNAME loop at ${current}`);
        seen.add(key);
        current = cname.domain!;
        hop = current;
        if (++depth > maxDepth) throw new DnsPermanentError('DNS_CNAME_LOOP', `${host}: more than ${maxDepth} CNAMEs`);
      }
      if (!hop || answer.status === 'nxdomain') return [];
      if (seen.has(hop.toLowerCase())) throw new DnsPermanentError('DNS_CNAME_LOOP', `${host}: CNAME loop at ${hop}`);
      answer = await this.query(hop, type);
    }
  }

  /** TXT strings of a name, each record's chunks as an array (node:dns's shape). */
  async txt(name: string): Promise<string[][]> {
    const answer = await this.query(name, 'TXT');
    return answer.records.filter((r) => r.type === TYPE_CODE.TXT).map((r) => (Array.isArray(r.data) ? r.data : [r.data ?? '']));
  }

  /**
   * A `(name, type)` lookup in node:dns's shape and error codes (ENOTFOUND, ENODATA), for
   * libraries that take a resolver function (mailauth's MTA-STS).
   */
  lookupFunction(): (name: string, type: string) => Promise<unknown[]> {
    return async (name, type) => {
      const notFound = (code: string) => Object.assign(new Error(`${code} ${name}`), { code });
      if (type === 'TXT') {
        const answer = await this.query(name, 'TXT');
        if (answer.status === 'nxdomain') throw notFound('ENOTFOUND');
        const rows = await this.txt(name);
        if (rows.length === 0) throw notFound('ENODATA');
        return rows;
      }
      if (type === 'A' || type === 'AAAA') {
        let found: string[];
        try {
          found = await this.addresses(name, type);
        } catch (err) {
          if (err instanceof DnsPermanentError) throw notFound('ENOTFOUND');
          throw err;
        }
        if (found.length === 0) throw notFound('ENODATA');
        return found;
      }
      throw notFound('ENOTIMP');
    };
  }

  /** Forgets every cached answer. */
  clear(): void {
    this.cache.clear();
  }

  private ttlOf(answer: Answer, type: RecordType): number {
    const { ttlFloorSeconds: floor, ttlCeilingSeconds: ceiling } = this.opts;
    const relevant = answer.records.filter((r) => r.type === TYPE_CODE[type] || r.type === TYPE_CODE.CNAME);
    if (answer.status !== 'ok' || relevant.length === 0) return floor;
    const ttl = Math.min(...relevant.map((r) => r.ttl));
    return Math.min(ceiling, Math.max(floor, ttl));
  }

  /** Asks the servers in order; the first definite answer wins, a temporary failure tries the next. */
  private async ask(name: string, type: RecordType): Promise<Answer> {
    let last: DnsTempError | undefined;
    for (const server of this.servers) {
      try {
        return await this.askOne(server, name, type);
      } catch (err) {
        if (!(err instanceof DnsTempError)) throw err;
        last = err;
      }
    }
    throw last!;
  }

  private async askOne(server: { host: string; port: number }, name: string, type: RecordType): Promise<Answer> {
    const { timeoutMs } = this.opts;
    let response: WireReply;
    try {
      response = await udpQuery(server.host, server.port, name, type, timeoutMs);
      if (response.header.tc) {
        this.emit('query', type, 'truncated');
        response = await tcpQuery(server.host, server.port, name, type, timeoutMs);
      }
    } catch (err) {
      const code = (err as { code?: string }).code;
      const outcome = code === 'ETIMEDOUT' ? 'timeout' : code === 'EMALFORMED' ? 'malformed' : 'error';
      this.emit('query', type, outcome);
      throw new DnsTempError(name, type, outcome, `${(err as Error).message} (server ${server.host}:${server.port})`, { cause: err });
    }
    const rcode = response.header.rcode;
    if (rcode === NXDOMAIN) {
      this.emit('query', type, 'nxdomain');
      return { status: 'nxdomain', records: [] };
    }
    if (rcode !== NOERROR) {
      const outcome = RCODE_NAMES[rcode] ?? `rcode-${rcode}`;
      this.emit('query', type, outcome);
      throw new DnsTempError(name, type, outcome, `${outcome.toUpperCase()} from ${server.host}:${server.port}`);
    }
    const records = (response.answers ?? []) as unknown as ResourceRecord[];
    this.emit('query', type, records.length > 0 ? 'ok' : 'nodata');
    return { status: 'ok', records };
  }
}
