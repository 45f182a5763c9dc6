/**
 * SPF, DKIM and DMARC verdicts of a mail received on an inbound route, by mailauth (resolving
 * through the given DNS function, so tests use the fake internet's DNS). Never fails the mail:
 * a check that throws or runs past its time gives `temperror` verdicts — the tenant decides what
 * to do with an unauthenticated mail, Postline only reports it.
 */
import dns from 'node:dns';
import { authenticate, type AuthenticateResult, type DNSResolver } from 'mailauth';

export interface AuthVerdicts {
  spf: string;
  dkim: string;
  dmarc: string;
}

export interface AuthCheckOptions {
  /** The connecting client's IP, its HELO name, and the envelope sender ('' for a null sender). */
  ip: string;
  helo?: string;
  sender: string;
  /** This service's host name (for the verdicts' Authentication-Results). */
  mta: string;
  resolver: DNSResolver;
  timeoutMs: number;
}

export const TEMPERROR: AuthVerdicts = { spf: 'temperror', dkim: 'temperror', dmarc: 'temperror' };

/** The three verdicts of mailauth's result. DKIM: `pass` when any signature passes, else the first one's result, `none` unsigned. */
export function verdictsOf(result: Pick<AuthenticateResult, 'spf' | 'dkim' | 'dmarc'>): AuthVerdicts {
  const dkimResults = (result.dkim?.results ?? []) as Array<{ status?: { result?: string } }>;
  const dkim = dkimResults.some((r) => r.status?.result === 'pass') ? 'pass' : (dkimResults[0]?.status?.result ?? 'none');
  const spf = result.spf ? ((result.spf as { status?: { result?: string } }).status?.result ?? 'none') : 'none';
  const dmarc = result.dmarc ? ((result.dmarc as { status?: { result?: string } }).status?.result ?? 'none') : 'none';
  return { spf, dkim, dmarc };
}

/** The verdicts for `raw`; `temperror` for all three when mailauth throws or takes longer than `timeoutMs`. */
export async function checkAuth(raw: Buffer, opts: AuthCheckOptions): Promise<AuthVerdicts> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), opts.timeoutMs);
  });
  try {
    const result = await Promise.race([
      authenticate(raw, { ip: opts.ip, ...(opts.helo ? { helo: opts.helo } : {}), ...(opts.sender ? { sender: opts.sender } : {}), mta: opts.mta, resolver: opts.resolver, disableBimi: true }),
      timeout,
    ]);
    return result === 'timeout' ? TEMPERROR : verdictsOf(result);
  } catch {
    return TEMPERROR;
  } finally {
    clearTimeout(timer);
  }
}

/** A DNS function for mailauth over node:dns: the given servers (`host[:port]`) or the system's, each query bounded. */
export function dnsResolverFor(servers: readonly string[], timeoutMs: number): DNSResolver {
  const resolver = new dns.promises.Resolver({ timeout: Math.max(100, Math.min(timeoutMs, 5000)), tries: 2 });
  if (servers.length > 0) resolver.setServers([...servers]);
  return (name, type) => resolver.resolve(name, type as 'TXT') as Promise<string[][]>;
}
