/**
 * MTA-STS (RFC 8461) on the fake internet: one HTTPS server on a 127.0.0.x address, port 443
 * (clients such as mailauth's `getPolicy` always connect to 443), serving
 * `/.well-known/mta-sts.txt` for every published domain by SNI and Host header, with a
 * certificate for `mta-sts.<domain>` signed by the harness CA; publishing also writes the
 * `_mta-sts.<domain>` TXT record and the `mta-sts.<domain>` A record into the fake DNS.
 */
import { randomBytes } from 'node:crypto';
import https from 'node:https';
import type net from 'node:net';
import tls from 'node:tls';
import type { CertificateAuthority } from './certificates.js';
import type { FakeDns } from './dns-server.js';

export interface MtaStsPolicy {
  mode: 'enforce' | 'testing' | 'none';
  /** MX host patterns (`mx1.example.test`, `*.example.test`). */
  mx: string[];
  /** max_age in seconds. */
  maxAge: number;
}

export interface MtaStsPublishOptions {
  /** The policy id in the TXT record (default: a new random one per publish, so a change is seen as one). */
  id?: string;
  /** Answer the policy request with this HTTP status (and no policy) instead of 200. */
  status?: number;
  /** Serve this body instead of the policy text built from `policy` (a malformed policy). */
  body?: string;
  /** TTL of the DNS records (default 300). */
  ttl?: number;
}

export interface PublishedMtaSts {
  domain: string;
  id: string;
  /** `https://mta-sts.<domain>/.well-known/mta-sts.txt` */
  url: string;
  /** The body served. */
  text: string;
}

export interface MtaStsRequest {
  host: string;
  path: string;
  at: number;
}

interface Served {
  status: number;
  text: string;
  context: tls.SecureContext;
}

/** The policy file of RFC 8461 §3.2 (CRLF lines). */
export function policyText(policy: MtaStsPolicy): string {
  return ['version: STSv1', `mode: ${policy.mode}`, ...policy.mx.map((mx) => `mx: ${mx}`), `max_age: ${policy.maxAge}`, ''].join('\r\n');
}

export class FakeMtaSts {
  /** Every request received, in order (count policy fetches with it). */
  readonly requests: MtaStsRequest[] = [];
  private readonly served = new Map<string, Served>(); // by mta-sts.<domain>
  private readonly sockets = new Set<net.Socket>();

  /** @internal use {@link startFakeMtaSts} */
  constructor(
    /** The 127.0.0.x address the HTTPS server listens on (port 443). */
    readonly address: string,
    private readonly server: https.Server,
    private readonly dns: FakeDns,
    private readonly ca: CertificateAuthority,
  ) {
    server.on('connection', (socket: net.Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    server.on('request', (req, res) => {
      const host = String(req.headers.host ?? '').replace(/:\d+$/, '').toLowerCase();
      this.requests.push({ host, path: req.url ?? '', at: Date.now() });
      const served = this.served.get(host);
      if (!served || req.url !== '/.well-known/mta-sts.txt') return void res.writeHead(404).end('not found\n');
      if (served.status !== 200) return void res.writeHead(served.status).end();
      res.writeHead(200, { 'content-type': 'text/plain' }).end(served.text);
    });
  }

  /** Publishes (or replaces) `domain`'s policy: DNS records, certificate, policy file. */
  async publish(domain: string, policy: MtaStsPolicy, opts: MtaStsPublishOptions = {}): Promise<PublishedMtaSts> {
    const host = `mta-sts.${domain.toLowerCase()}`;
    const id = opts.id ?? `${Date.now()}${randomBytes(3).toString('hex')}`;
    const cert = await this.ca.issue([host]);
    const text = opts.body ?? policyText(policy);
    this.served.set(host, { status: opts.status ?? 200, text, context: tls.createSecureContext({ key: cert.key, cert: cert.cert }) });
    this.dns.a(host, this.address, { ttl: opts.ttl });
    this.dns.txt(`_mta-sts.${domain}`, `v=STSv1; id=${id};`, { ttl: opts.ttl });
    return { domain, id, url: `https://${host}/.well-known/mta-sts.txt`, text };
  }

  /** Policy fetches for `domain`. */
  fetchesFor(domain: string): MtaStsRequest[] {
    return this.requests.filter((r) => r.host === `mta-sts.${domain.toLowerCase()}` && r.path === '/.well-known/mta-sts.txt');
  }

  /** @internal the server's SNI lookup */
  contextFor(servername: string): tls.SecureContext | undefined {
    return this.served.get(servername.toLowerCase())?.context;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * Starts the HTTPS server on port 443 of a random address in 127.0.0.100–254 (other test runs on
 * the machine may hold 443 on one of them). Binding 443 needs root or CAP_NET_BIND_SERVICE: when it
 * fails for another reason than a taken address, this throws — MTA-STS tests are never skipped.
 */
export async function startFakeMtaSts(deps: { dns: FakeDns; ca: CertificateAuthority }): Promise<FakeMtaSts> {
  let fake: FakeMtaSts | undefined;
  const server = https.createServer({
    SNICallback: (servername, cb) => cb(null, fake?.contextFor(servername)),
  });
  let lastError: NodeJS.ErrnoException | undefined;
  for (let attempt = 0; attempt < 30; attempt++) {
    const address = `127.0.0.${100 + Math.floor(Math.random() * 155)}`;
    lastError = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
      server.once('error', resolve);
      server.listen(443, address, () => {
        server.removeListener('error', resolve);
        resolve(undefined);
      });
    });
    if (!lastError) {
      fake = new FakeMtaSts(address, server, deps.dns, deps.ca);
      return fake;
    }
    if (lastError.code !== 'EADDRINUSE') break;
  }
  throw new Error(
    `fake internet: cannot listen on 127.0.0.x:443 for the MTA-STS policy server (${lastError?.code}: ${lastError?.message}). ` +
      'MTA-STS clients always connect to port 443: run the tests as root or give node CAP_NET_BIND_SERVICE.',
    { cause: lastError },
  );
}
