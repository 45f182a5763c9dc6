/**
 * The SSRF guard for outbound HTTP to customer-given URLs (webhooks, and anyone else calling a
 * URL a tenant chose): a URL's host must resolve only to public unicast addresses — never
 * private, loopback, link-local, CGNAT, multicast, unspecified, reserved or documentation
 * ranges, in IPv4 or IPv6 (an IPv4-mapped IPv6 address counts as its IPv4 address) — unless
 * the address or host name is in the allow list (`webhooks.allowPrivate`). Checked twice:
 * when the URL is given (`checkUrl`, a 400 for the API) and when connecting (`lookup`, passed
 * to undici's `connect.lookup`): the address checked is the one connected to, so a DNS answer
 * that changes between the two (rebinding) cannot reach an internal host.
 */
import dns from 'node:dns';
import type { LookupAddress, LookupOneOptions, LookupAllOptions } from 'node:dns';
import ipaddr from 'ipaddr.js';
import { PermanentError } from '../errors.js';

/** A URL or address the guard refuses; permanent (retrying cannot make it allowed). */
export class SsrfRefused extends PermanentError {
  constructor(message: string) {
    super('SSRF_REFUSED', message);
  }
}

export interface SsrfGuardOptions {
  /** CIDRs (`10.0.0.0/8`, `127.0.0.1/32`, `::1/128`) or host names allowed although not public. */
  allow?: string[];
  /** Accept `http:` URLs (default: `https:` only). */
  allowHttp?: boolean;
  /** Resolver (default: the system's `dns.lookup`, what connections use). */
  resolve?: (host: string) => Promise<string[]>;
}

type Range = [ipaddr.IPv4 | ipaddr.IPv6, number];

/** ipaddr.js range names that are public unicast; everything else is refused. */
const PUBLIC_RANGES = new Set(['unicast']);

const systemResolve = async (host: string): Promise<string[]> => (await dns.promises.lookup(host, { all: true, verbatim: true })).map((a) => a.address);

export class SsrfGuard {
  private readonly ranges: Range[] = [];
  private readonly hosts = new Set<string>();
  private readonly resolveHost: (host: string) => Promise<string[]>;

  constructor(private readonly opts: SsrfGuardOptions = {}) {
    for (const entry of opts.allow ?? []) {
      const e = entry.trim();
      if (!e) continue;
      if (e.includes('/')) this.ranges.push(ipaddr.parseCIDR(e));
      else if (ipaddr.isValid(e)) this.ranges.push([ipaddr.parse(e), ipaddr.parse(e).kind() === 'ipv4' ? 32 : 128]);
      else this.hosts.add(e.toLowerCase());
    }
    this.resolveHost = opts.resolve ?? systemResolve;
  }

  /** Why `address` may not be connected to (its range name), or null when it may. */
  addressProblem(address: string, host?: string): string | null {
    if (!ipaddr.isValid(address)) return 'not an IP address';
    let ip = ipaddr.parse(address);
    // ::ffff:10.0.0.1 reaches 10.0.0.1.
    if (ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).isIPv4MappedAddress()) ip = (ip as ipaddr.IPv6).toIPv4Address();
    if (host && this.hosts.has(host.toLowerCase())) return null;
    for (const [net, bits] of this.ranges) if (net.kind() === ip.kind() && ip.match(net, bits)) return null;
    const range = ip.range();
    // 100.64.0.0/10 (CGNAT) is 'carrierGradeNat'; 0.0.0.0/8 'unspecified'; fc00::/7 'uniqueLocal'; …
    return PUBLIC_RANGES.has(range) ? null : range;
  }

  /** Whether URLs with this protocol (`https:`, `http:`) may be called. */
  schemeAllowed(protocol: string): boolean {
    return protocol === 'https:' || (protocol === 'http:' && Boolean(this.opts.allowHttp));
  }

  /** Throws SsrfRefused unless `raw` is an http(s) URL whose host resolves only to allowed addresses. */
  async checkUrl(raw: string): Promise<URL> {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new SsrfRefused('not a valid URL');
    }
    if (!this.schemeAllowed(url.protocol)) throw new SsrfRefused(this.opts.allowHttp ? 'the URL must be http or https' : 'the URL must be https');
    if (url.username || url.password) throw new SsrfRefused('the URL must not carry credentials');
    const host = url.hostname.replace(/^\[|\]$/g, '');
    let addresses: string[];
    if (ipaddr.isValid(host)) addresses = [host];
    else {
      try {
        addresses = await this.resolveHost(host);
      } catch (err) {
        throw new SsrfRefused(`the host ${host} does not resolve (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    }
    if (addresses.length === 0) throw new SsrfRefused(`the host ${host} does not resolve`);
    for (const a of addresses) {
      const problem = this.addressProblem(a, host);
      if (problem) throw new SsrfRefused(`the host ${host} resolves to ${a}, a ${problem} address, which is not allowed`);
    }
    return url;
  }

  /**
   * A `dns.lookup`-compatible function for undici's `connect: { lookup }`: resolves, refuses the
   * connection when any answer is not allowed, and hands back only the checked addresses.
   */
  readonly lookup = (hostname: string, options: LookupOneOptions | LookupAllOptions | number, callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void): void => {
    const opts = typeof options === 'number' ? { family: options } : options;
    const host = hostname.replace(/^\[|\]$/g, '');
    const answer = (addresses: string[]): void => {
      for (const a of addresses) {
        const problem = this.addressProblem(a, host);
        if (problem) return callback(new SsrfRefused(`connection to ${host} (${a}, a ${problem} address) refused`), '');
      }
      const list = addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
      if ((opts as LookupAllOptions).all) callback(null, list);
      else callback(null, list[0].address, list[0].family);
    };
    if (ipaddr.isValid(host)) return answer([host]);
    this.resolveHost(host).then(
      (addresses) => (addresses.length ? answer(addresses) : callback(Object.assign(new Error(`${host} does not resolve`), { code: 'ENOTFOUND' }), '')),
      (err: NodeJS.ErrnoException) => callback(err, ''),
    );
  };
}
