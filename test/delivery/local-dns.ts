/**
 * A small authoritative DNS server for delivery tests (dns2, UDP and TCP on one port of
 * 127.0.0.1): MX, A, AAAA, CNAME and TXT records per name, and hostile behaviours per name —
 * SERVFAIL, REFUSED, NXDOMAIN, no answer at all (timeout), a truncated UDP answer (the TCP
 * answer is complete), a malformed reply. Logs every query so tests can count lookups.
 * (Stands in until the shared fake internet in test/helpers/fake-internet lands.)
 */
import DNS from 'dns2';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const Packet = DNS.Packet as any;

export type DnsBehaviour = 'servfail' | 'refused' | 'nxdomain' | 'timeout' | 'truncate' | 'malformed';

interface Rr {
  type: number;
  ttl: number;
  data: Record<string, unknown>;
}

export interface LocalDns {
  servers: string[];
  port: number;
  queries: Array<{ name: string; type: string; transport: 'udp' | 'tcp'; at: number }>;
  mx(domain: string, records: Array<{ exchange: string; priority: number }>, opts?: { ttl?: number }): void;
  a(host: string, ...addresses: string[]): void;
  aaaa(host: string, ...addresses: string[]): void;
  cname(name: string, target: string): void;
  txt(name: string, value: string): void;
  nullMx(domain: string): void;
  /** The name exists (NOERROR) but has no records of the asked type unless added. */
  exists(name: string): void;
  behave(name: string, behaviour: DnsBehaviour): void;
  countOf(name: string, type: string): number;
  close(): Promise<void>;
}

const TYPES: Record<number, string> = { 1: 'A', 5: 'CNAME', 15: 'MX', 16: 'TXT', 28: 'AAAA' };

export async function startLocalDns(): Promise<LocalDns> {
  const zone = new Map<string, Rr[]>();
  const behaviours = new Map<string, DnsBehaviour>();
  const queries: LocalDns['queries'] = [];
  const key = (n: string) => n.toLowerCase().replace(/\.$/, '');
  const add = (name: string, rr: Rr) => zone.set(key(name), [...(zone.get(key(name)) ?? []), rr]);

  const answer = (request: any, transport: 'udp' | 'tcp'): any => {
    const q = request.questions[0];
    const name = key(q?.name ?? '');
    queries.push({ name, type: TYPES[q?.type] ?? String(q?.type), transport, at: Date.now() });
    const response = Packet.createResponseFromRequest(request);
    const behaviour = behaviours.get(name);
    if (behaviour === 'timeout') return undefined;
    if (behaviour === 'malformed') {
      // The right id, then garbage: unreadable as a DNS message.
      const buf = Buffer.alloc(40, 0xff);
      buf.writeUInt16BE(request.header.id, 0);
      return buf;
    }
    if (behaviour === 'servfail' || behaviour === 'refused') {
      response.header.rcode = behaviour === 'servfail' ? 2 : 5;
      return response;
    }
    if (behaviour === 'truncate' && transport === 'udp') {
      response.header.tc = 1;
      return response;
    }
    const records = zone.get(name);
    if (behaviour === 'nxdomain' || !records) {
      response.header.rcode = 3;
      return response;
    }
    for (const rr of records) {
      // A CNAME answers every type (the client follows it).
      if (rr.type === q.type || (rr.type === 5 && q.type !== 5)) response.answers.push({ name, type: rr.type, class: 1, ttl: rr.ttl, ...rr.data });
    }
    return response;
  };

  const udp = DNS.createUDPServer((request: any, send: (r: any) => void) => {
    const r = answer(request, 'udp');
    if (r !== undefined) void send(r);
  });
  const tcp = DNS.createTCPServer((request: any, send: (r: any) => void) => {
    const r = answer(request, 'tcp');
    if (r !== undefined) void send(r);
  });
  await (udp as any).listen(0, '127.0.0.1');
  const port = (udp.address() as { port: number }).port;
  await new Promise<void>((resolve, reject) => {
    tcp.once('error', reject);
    tcp.listen(port, '127.0.0.1', () => resolve());
  });

  return {
    servers: [`127.0.0.1:${port}`],
    port,
    queries,
    mx(domain, records, opts = {}) {
      zone.set(key(domain), (zone.get(key(domain)) ?? []).filter((r) => r.type !== 15));
      for (const r of records) add(domain, { type: 15, ttl: opts.ttl ?? 300, data: { exchange: r.exchange, priority: r.priority } });
    },
    a(host, ...addresses) {
      for (const address of addresses) add(host, { type: 1, ttl: 300, data: { address } });
    },
    aaaa(host, ...addresses) {
      for (const address of addresses) add(host, { type: 28, ttl: 300, data: { address } });
    },
    cname(name, target) {
      add(name, { type: 5, ttl: 300, data: { domain: target } });
    },
    txt(name, value) {
      add(name, { type: 16, ttl: 300, data: { data: value } });
    },
    nullMx(domain) {
      add(domain, { type: 15, ttl: 300, data: { exchange: '', priority: 0 } });
    },
    exists(name) {
      if (!zone.has(key(name))) zone.set(key(name), []);
    },
    behave(name, behaviour) {
      behaviours.set(key(name), behaviour);
    },
    countOf(name, type) {
      return queries.filter((q) => q.name === key(name) && q.type === type).length;
    },
    async close() {
      await new Promise<void>((resolve) => udp.close(() => resolve()));
      await new Promise<void>((resolve) => tcp.close(() => resolve()));
    },
  };
}
