/**
 * The fake internet's DNS server: dns2's UDP and TCP servers on 127.0.0.1, one port for both,
 * answering from a {@link Zone} and logging every query. Hostile behaviours are set per name
 * (optionally per type): SERVFAIL, REFUSED, NXDOMAIN, never answering, a truncated UDP answer
 * (TC bit, the full answer over TCP) and malformed bytes.
 *
 *   const dns = await startFakeDns();
 *   dns.mx('example.test', [{ exchange: 'mx1.example.test', priority: 10 }], { ttl: 300 });
 *   dns.a('mx1.example.test', '127.0.0.20');
 *   const resolve = dns.resolver();          // (name, type) => Promise, like dns.promises.resolve
 *   await resolve('example.test', 'MX');
 *   await dns.close();
 */
import dgram from 'node:dgram';
import { promises as dnsPromises } from 'node:dns';
import net from 'node:net';
import { Packet, TCPServer, UDPServer } from 'dns2';
import { Zone, normalizeName, reverseName, txtChunks, type Answer, type RecordData, type RecordType } from './dns-zone.js';

/** What the server does instead of answering a name from the zone. */
export type DnsBehaviour = 'servfail' | 'refused' | 'nxdomain' | 'timeout' | 'truncate' | 'malformed';

export interface RecordOptions {
  /** TTL in seconds (default 300). */
  ttl?: number;
}

export interface DnsQuery {
  name: string;
  /** Record type asked for ('MX', 'A', …; `TYPE<n>` for types the server does not know). */
  type: string;
  transport: 'udp' | 'tcp';
  /** The client's address. */
  from: string;
  /** What was answered: an rcode, or `timeout` / `malformed` / `truncated`. */
  outcome: string;
  at: number;
}

export interface ResolverOptions {
  /** Per-try timeout in ms (Node's default is 5 s; tests want less). Default 1000. */
  timeoutMs?: number;
  /** Tries per query. Default 2. */
  tries?: number;
}

/** `(name, type) => Promise<records>`, the shape of `dns.promises.resolve` (mailauth's `resolver`). */
export type ResolveFunction = (name: string, type?: string) => Promise<unknown>;
/** `(name, type, callback)`, the callback shape mx-connect's `dnsOptions.resolve` takes. */
export type CallbackResolveFunction = (name: string, type: string | ((err: Error | null, records?: unknown) => void), callback?: (err: Error | null, records?: unknown) => void) => void;

const TYPE_NAMES = new Map<number, string>(Object.entries(Packet.TYPE).map(([name, code]) => [code as number, name]));
const RCODES = { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 } as const;
const SERVED: ReadonlySet<string> = new Set<RecordType>(['A', 'AAAA', 'MX', 'TXT', 'CNAME', 'PTR']);

export class FakeDns {
  readonly host = '127.0.0.1';
  /** Every query received, in order. */
  readonly queries: DnsQuery[] = [];
  private readonly zone = new Zone();
  private readonly behaviours = new Map<string, DnsBehaviour>();
  private readonly tcpSockets = new Set<net.Socket>();
  private closed = false;

  /** @internal use {@link startFakeDns} */
  constructor(
    readonly port: number,
    private readonly udp: InstanceType<typeof UDPServer>,
    private readonly tcp: InstanceType<typeof TCPServer>,
  ) {
    const handle = (request: Packet, send: (r: Packet | Buffer) => Promise<Buffer>, client: unknown): void => {
      this.handle(request, send, client).catch(() => undefined);
    };
    udp.on('request', handle);
    tcp.on('request', handle);
    tcp.on('connection', (socket: net.Socket) => {
      this.tcpSockets.add(socket);
      socket.on('close', () => this.tcpSockets.delete(socket));
    });
  }

  /** `['127.0.0.1:PORT']`, for `Resolver#setServers` and resolver config. */
  get servers(): string[] {
    return [`${this.host}:${this.port}`];
  }

  /** MX records of `domain` (replacing any). */
  mx(domain: string, records: { exchange: string; priority: number }[], opts: RecordOptions = {}): void {
    this.set(domain, 'MX', records.map((r) => ({ type: 'MX', exchange: normalizeName(r.exchange), priority: r.priority })), opts);
  }

  /** A null MX (RFC 7505, `0 .`): the domain accepts no mail. */
  nullMx(domain: string, opts: RecordOptions = {}): void {
    this.set(domain, 'MX', [{ type: 'MX', exchange: '', priority: 0 }], opts);
  }

  /** A records of `name` (replacing any). */
  a(name: string, addresses: string | string[], opts: RecordOptions = {}): void {
    this.set(name, 'A', [addresses].flat().map((address) => ({ type: 'A', address })), opts);
  }

  /** AAAA records of `name` (replacing any). */
  aaaa(name: string, addresses: string | string[], opts: RecordOptions = {}): void {
    this.set(name, 'AAAA', [addresses].flat().map((address) => ({ type: 'AAAA', address })), opts);
  }

  /** TXT records of `name` (replacing any): each string is one record, split into 255-byte chunks. */
  txt(name: string, values: string | string[], opts: RecordOptions = {}): void {
    this.set(name, 'TXT', [values].flat().map((v) => ({ type: 'TXT', data: txtChunks(v) })), opts);
  }

  /** A CNAME from `name` to `target`. */
  cname(name: string, target: string, opts: RecordOptions = {}): void {
    this.set(name, 'CNAME', [{ type: 'CNAME', domain: normalizeName(target) }], opts);
  }

  /** The PTR record of an IP address (reverse DNS), e.g. `ptr('127.0.0.2', 'mta2.example.test')`. */
  ptr(ip: string, hostname: string, opts: RecordOptions = {}): void {
    this.set(reverseName(ip), 'PTR', [{ type: 'PTR', domain: normalizeName(hostname) }], opts);
  }

  /** Makes `name` exist without records: NOERROR with no answers (NODATA) for every type. */
  exists(name: string): void {
    this.zone.touch(name);
  }

  /** Removes the records of one type at `name`, or all of them. */
  remove(name: string, type?: RecordType): void {
    this.zone.remove(name, type);
  }

  /**
   * Makes queries for `name` (of every type, or only `opts.type`) behave badly; `null` restores
   * normal answers. `truncate` answers over UDP with the TC bit and no records, and in full over
   * TCP (so a correct client retries over TCP and succeeds).
   */
  behave(name: string, behaviour: DnsBehaviour | null, opts: { type?: RecordType } = {}): void {
    const key = behaviourKey(name, opts.type);
    if (behaviour) this.behaviours.set(key, behaviour);
    else this.behaviours.delete(key);
  }

  /** Queries received for `name` (optionally of one type). */
  queriesFor(name: string, type?: string): DnsQuery[] {
    const key = normalizeName(name);
    return this.queries.filter((q) => q.name === key && (!type || q.type === type));
  }

  /** A Node resolver pointed at this server. */
  nodeResolver(opts: ResolverOptions = {}): dnsPromises.Resolver {
    const resolver = new dnsPromises.Resolver({ timeout: opts.timeoutMs ?? 1000, tries: opts.tries ?? 2 });
    resolver.setServers(this.servers);
    return resolver;
  }

  /**
   * `(name, type = 'A') => Promise<records>` through a Node resolver pointed at this server, for
   * libraries that take a resolve function (mailauth's `resolver` option). Errors are Node's
   * (`ENOTFOUND`, `ENODATA`, `ESERVFAIL`, `ETIMEOUT`, `EBADRESP`, …).
   */
  resolver(opts: ResolverOptions = {}): ResolveFunction {
    const resolver = this.nodeResolver(opts);
    return (name, type = 'A') => resolver.resolve(name, type as 'A');
  }

  /** The same as a callback-style function, for mx-connect's `dnsOptions.resolve`. */
  callbackResolver(opts: ResolverOptions = {}): CallbackResolveFunction {
    const resolve = this.resolver(opts);
    return (name, type, callback) => {
      const cb = typeof type === 'function' ? type : callback!;
      resolve(name, typeof type === 'string' ? type : 'A').then(
        (records) => cb(null, records),
        (err: Error) => cb(err),
      );
    };
  }

  /** Stops both servers and drops open TCP connections. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const socket of this.tcpSockets) socket.destroy();
    await Promise.all([
      new Promise<void>((resolve) => this.udp.close(() => resolve())),
      new Promise<void>((resolve) => this.tcp.close(() => resolve())),
    ]);
  }

  private set(name: string, type: RecordType, records: RecordData[], opts: RecordOptions): void {
    this.zone.set(name, type, records, opts.ttl ?? 300);
  }

  private async handle(request: Packet, send: (r: Packet | Buffer) => Promise<Buffer>, client: unknown): Promise<void> {
    const question = request.questions[0];
    if (!question) return;
    const transport = client instanceof net.Socket ? 'tcp' : 'udp';
    const name = normalizeName(question.name);
    const type = TYPE_NAMES.get(question.type) ?? `TYPE${question.type}`;
    const from = client instanceof net.Socket ? (client.remoteAddress ?? '') : (client as dgram.RemoteInfo).address;
    const log = (outcome: string): void => {
      this.queries.push({ name, type, transport, from, outcome, at: Date.now() });
    };
    const behaviour = this.behaviours.get(behaviourKey(name, type)) ?? this.behaviours.get(behaviourKey(name));
    const response = Packet.createResponseFromRequest(request);
    response.header.ra = 1;
    switch (behaviour) {
      case 'timeout':
        return log('timeout');
      case 'malformed':
        log('malformed');
        await send(malformed(response));
        return;
      case 'servfail':
      case 'refused':
      case 'nxdomain': {
        const rcode = behaviour.toUpperCase() as keyof typeof RCODES;
        log(rcode);
        response.header.rcode = RCODES[rcode];
        await send(response);
        return;
      }
      case 'truncate':
        if (transport === 'udp') {
          log('truncated');
          response.header.tc = 1;
          // A raw buffer: dns2 sends it as is (a Packet with no answers would go out without TC).
          await send(response.toBuffer());
          return;
        }
        break;
    }
    const answer: Answer = SERVED.has(type) ? this.zone.answer(name, type as RecordType) : { rcode: this.zone.exists(name) ? 'NOERROR' : 'NXDOMAIN', answers: [] };
    log(answer.rcode);
    response.header.rcode = RCODES[answer.rcode];
    response.answers = answer.answers.map((record) => ({ ...record, type: Packet.TYPE[record.type], class: Packet.CLASS.IN }) as unknown as Packet["answers"][number]);
    await send(response);
  }
}

function behaviourKey(name: string, type?: string): string {
  return `${normalizeName(name)}/${type ?? '*'}`;
}

/** A response whose header promises an answer that is not there: a pointer past the end. */
function malformed(response: Packet): Buffer {
  const bytes = response.toBuffer();
  bytes.writeUInt16BE(1, 6); // ANCOUNT = 1
  return Buffer.concat([bytes, Buffer.from([0xc0, 0xff, 0x00, 0x01])]);
}

/** Starts the fake DNS on 127.0.0.1 at a random port (UDP and TCP on the same number). */
export async function startFakeDns(): Promise<FakeDns> {
  for (let attempt = 0; ; attempt++) {
    const udp = new UDPServer();
    await udp.listen(0, '127.0.0.1');
    const port = udp.address().port;
    const tcp = new TCPServer();
    const error = await new Promise<Error | null>((resolve) => {
      tcp.once('error', resolve);
      tcp.listen(port, '127.0.0.1', () => resolve(null));
    });
    if (!error) return new FakeDns(port, udp, tcp);
    await new Promise<void>((resolve) => udp.close(() => resolve()));
    if (attempt >= 20) throw new Error(`fake DNS: no port free for both UDP and TCP on 127.0.0.1 (${error.message})`);
  }
}
