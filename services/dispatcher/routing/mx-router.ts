/**
 * Routes a dispatch record with a routing file: pool (record field, tenant, priority, `default`)
 * → route; for a relay route the relay's hosts, for an mx route a source address of the pool
 * (by weight, among those the shaper lets send), the domain's MX hosts (by preference, A/AAAA
 * fallback), filtered by the domain's MTA-STS policy, each reached at its first usable address
 * from the source address with its EHLO name. What cannot be routed becomes a verdict instead:
 * `bounced` (category dns: NXDOMAIN, null MX, no MX host with an address), `deferred` (DNS
 * failures that may pass, no source address available, no MX host the MTA-STS policy allows) or
 * `failed` (a pool name that does not exist: the sender's error).
 */
import { BlockList, isIPv6 } from 'node:net';
import type { EmailReadyForDispatch } from '../../../shared/contracts/email-ready-for-dispatch.js';
import type { Route, SmtpTarget } from '../route.js';
import { DnsPermanentError, DnsTempError, type DnsResolver } from './dns-resolver.js';
import type { MtaStsPolicies } from './mta-sts.js';
import { planMx, type MxHost } from './mx-plan.js';
import { choosePool, chooseSource, type SourceAddress } from './pools.js';
import type { RoutingFile, RouteSpec } from './routes-file.js';
import type { Shaper } from '../shaping/shaper.js';
import { siteOfHosts } from './sites.js';

/** A record that cannot be routed, and what that means for its recipients. */
export interface RouteRefusal {
  kind: 'bounced' | 'deferred' | 'failed';
  code: string;
  reason: string;
  /** `dns` for a domain that cannot receive mail. */
  category?: string;
  pool?: string;
  source?: string;
  site?: string;
}

export type Routed = { route: Route } | { refusal: RouteRefusal };

export interface MxRouterDeps {
  file: RoutingFile;
  /** The relay route (dispatcher.relay), for pools whose route is a relay. */
  relay?: Route;
  resolver: DnsResolver;
  mtaSts?: MtaStsPolicies;
  shaper: Shaper;
  random?: () => number;
  /** Notified of MX hosts an MTA-STS `testing` policy does not list (delivered anyway). */
  onStsViolation?: (domain: string, host: string, mode: string) => void;
}

/** Loopback, private, link-local, CGNAT, unspecified: never a public MX host. */
const LOCAL = new BlockList();
for (const [net, prefix] of [['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12], ['192.168.0.0', 16]] as const) LOCAL.addSubnet(net, prefix, 'ipv4');
// (No ::ffff:0:0/96 entry: BlockList checks IPv4 addresses against IPv4-mapped subnets too, so it
// would match every IPv4 address. Mapped addresses are checked as the IPv4 address they carry.)
for (const [net, prefix] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10]] as const) LOCAL.addSubnet(net, prefix, 'ipv6');

export function isLocalAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return LOCAL.check(mapped[1], 'ipv4');
  return LOCAL.check(address, isIPv6(address) ? 'ipv6' : 'ipv4');
}

interface Reachable {
  host: MxHost;
  address: string;
}

export class MxRouter {
  private readonly poolNames: ReadonlySet<string>;

  constructor(private readonly deps: MxRouterDeps) {
    this.poolNames = new Set(Object.keys(deps.file.pools));
  }

  /** The route of a record, or why it has none. Never throws for DNS trouble. */
  async route(msg: Pick<EmailReadyForDispatch, 'domain' | 'pool' | 'tenant' | 'priority'>): Promise<Routed> {
    const { file } = this.deps;
    const choice = choosePool(msg, file.choose, this.poolNames);
    if ('unknownPool' in choice) {
      return { refusal: { kind: 'failed', code: 'UNKNOWN_POOL', reason: `no pool named ${JSON.stringify(choice.unknownPool)} in the routing file` } };
    }
    const poolName = choice.pool;
    const pool = file.pools[poolName];
    const spec = file.routes[pool.route];
    if (spec.kind === 'relay') {
      if (!this.deps.relay) return { refusal: { kind: 'deferred', code: 'NO_RELAY', reason: 'pool routes through the relay but no relay is configured', pool: poolName } };
      return { route: { ...this.deps.relay, name: pool.route, pool: poolName, source: 'relay' } };
    }
    const source = chooseSource(pool.addresses, (a) => this.deps.shaper.sourceAvailable(a, poolName), this.deps.random);
    // Claimed at once (no await in between): messages routed side by side cannot overrun a warm-up cap.
    if (!source || (this.deps.shaper.claim && !this.deps.shaper.claim(source.address))) {
      return { refusal: { kind: 'deferred', code: 'POOL_UNAVAILABLE', reason: `no source address of pool ${poolName} may send now (warm-up cap or paused)`, pool: poolName } };
    }
    try {
      return await this.mxRoute(msg.domain, pool.route, spec, poolName, source);
    } catch (err) {
      if (err instanceof DnsTempError) return { refusal: { kind: 'deferred', code: 'DNS_TEMPFAIL', reason: err.message, pool: poolName, source: source.address } };
      throw err;
    }
  }

  private async mxRoute(domain: string, routeName: string, spec: RouteSpec, pool: string, source: SourceAddress): Promise<Routed> {
    const { file, resolver } = this.deps;
    const refuse = (r: Omit<RouteRefusal, 'pool' | 'source'>): Routed => ({ refusal: { ...r, pool, source: source.address } });
    const plan = planMx(domain, await resolver.mx(domain), { maxHosts: file.dns.maxMxHosts, random: this.deps.random });
    if (plan.kind === 'no-mail') return refuse({ kind: 'bounced', code: plan.code, reason: plan.reason, category: 'dns' });
    let hosts = plan.hosts;
    const site = siteOfHosts(hosts, file.sites);
    let verify = spec.tls === 'verify';
    if (spec.mtaSts && this.deps.mtaSts) {
      const sts = this.deps.mtaSts;
      const policy = await sts.policyFor(domain);
      if (policy.mode === 'enforce') {
        hosts = hosts.filter((h) => sts.allows(domain, h.name, policy));
        if (hosts.length === 0) return refuse({ kind: 'deferred', code: 'MTA_STS_NO_VALID_MX', reason: `${domain}: no MX host matches its MTA-STS policy (enforce: ${(policy.mx ?? []).join(', ')})`, site });
        verify = true;
      } else if (policy.mode === 'testing') {
        for (const h of hosts) if (!sts.allows(domain, h.name, policy)) this.deps.onStsViolation?.(domain, h.name, 'testing');
      }
    }
    const reachable = await this.addresses(hosts, source.address);
    if (reachable.hosts.length === 0) {
      if (reachable.temporary) throw reachable.temporary;
      return refuse({ kind: 'bounced', code: 'DNS_NO_ADDRESS', reason: `${domain}: no MX host has a usable address (${reachable.why.join('; ')})`, category: 'dns', site });
    }
    const port = file.dns.smtpPort;
    const tlsRequired = verify || spec.tls === 'required';
    // Connections differ by TLS policy: one opened without a certificate check must never carry
    // a message whose policy (verify, MTA-STS enforce) demands one.
    const policyTag = verify ? ' tls=verify' : tlsRequired ? ' tls=required' : '';
    const targets = reachable.hosts.map(({ host, address }): SmtpTarget => ({
      key: `${host.name}:${port} ${address} from ${source.address}${policyTag}`,
      host: address,
      port,
      secure: false,
      requireTLS: false,
      ignoreTLS: false,
      tlsRejectUnauthorized: verify,
      tlsRequired,
      servername: host.name,
      ...(file.ca ? { ca: file.ca } : {}),
      clientName: source.ehlo,
      localAddress: source.address,
      // Per host and TLS policy: a host refusing `required` TLS must not stop opportunistic mail to it.
      breakerKey: `${host.name}:${port}${policyTag}`,
      shaping: { source: source.address, site, domain },
    }));
    return { route: { name: routeName, hosts: targets, pool, site, source: source.address } };
  }

  /** The first usable address of each host (same family as the source), in the hosts' order. */
  private async addresses(hosts: MxHost[], source: string): Promise<{ hosts: Reachable[]; temporary?: DnsTempError; why: string[] }> {
    const type = isIPv6(source) ? 'AAAA' : 'A';
    const why: string[] = [];
    let temporary: DnsTempError | undefined;
    const found = await Promise.all(
      hosts.map(async (host): Promise<Reachable | undefined> => {
        try {
          const all = await this.deps.resolver.addresses(host.name, type);
          const usable = this.deps.file.dns.blockLocalAddresses ? all.filter((a) => !isLocalAddress(a)) : all;
          if (usable.length > 0) return { host, address: usable[0] };
          why.push(all.length > 0 ? `${host.name}: only local addresses` : `${host.name}: no ${type} record`);
        } catch (err) {
          if (err instanceof DnsTempError) temporary ??= err;
          else if (err instanceof DnsPermanentError) why.push(err.message);
          else throw err;
        }
        return undefined;
      }),
    );
    return { hosts: found.filter((r): r is Reachable => r !== undefined), temporary, why };
  }
}
