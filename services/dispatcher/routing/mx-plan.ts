/**
 * Which hosts receive mail for a domain, from its MX answer (RFC 5321 §5.1, RFC 7505). Pure:
 * the DNS answer goes in, an ordered host list (or a permanent verdict) comes out.
 */

export interface MxRecord {
  exchange: string;
  priority: number;
}

/** What DNS said about a domain's MX records. */
export type MxAnswer =
  | { kind: 'records'; records: MxRecord[] }
  /** The domain exists but has no MX records: it is its own mail host (implicit MX). */
  | { kind: 'none' }
  | { kind: 'nxdomain' };

export interface MxHost {
  name: string;
  preference: number;
  /** No MX record: the domain itself, reached through its A/AAAA records. */
  implicit: boolean;
}

export type MxPlan =
  | { kind: 'hosts'; hosts: MxHost[] }
  /** Permanent: the domain does not exist, or publishes a null MX (it accepts no mail). */
  | { kind: 'no-mail'; code: 'DNS_NXDOMAIN' | 'DNS_NULL_MX'; reason: string };

const normalise = (host: string): string => host.trim().toLowerCase().replace(/\.$/, '');

/** Fisher–Yates over `items[from, to)` with an injectable random source. */
function shuffleRange<T>(items: T[], from: number, to: number, random: () => number): void {
  for (let i = to - 1; i > from; i--) {
    const j = from + Math.floor(random() * (i - from + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
}

/**
 * Orders a domain's MX hosts: by preference (lowest first), equal preferences shuffled so load
 * spreads over them, duplicates dropped, at most `maxHosts` (a domain answering with 100 MX
 * records gets its `maxHosts` most preferred). No MX at all → the domain itself (implicit MX);
 * a null MX (`0 .`, RFC 7505) or NXDOMAIN → no mail for this domain.
 */
export function planMx(domain: string, answer: MxAnswer, opts: { maxHosts: number; random?: () => number }): MxPlan {
  if (answer.kind === 'nxdomain') return { kind: 'no-mail', code: 'DNS_NXDOMAIN', reason: `${domain}: domain does not exist (NXDOMAIN)` };
  if (answer.kind === 'none') return { kind: 'hosts', hosts: [{ name: normalise(domain), preference: 0, implicit: true }] };
  const real = answer.records.filter((r) => normalise(r.exchange) !== '');
  // RFC 7505: a null MX is the domain's only MX record. Next to real ones it is ignored.
  if (real.length === 0) return { kind: 'no-mail', code: 'DNS_NULL_MX', reason: `${domain}: publishes a null MX (accepts no mail, RFC 7505)` };
  const seen = new Set<string>();
  const hosts: MxHost[] = [];
  for (const r of [...real].sort((a, b) => a.priority - b.priority)) {
    const name = normalise(r.exchange);
    if (seen.has(name)) continue;
    seen.add(name);
    hosts.push({ name, preference: r.priority, implicit: false });
  }
  const random = opts.random ?? Math.random;
  for (let from = 0; from < hosts.length; ) {
    let to = from + 1;
    while (to < hosts.length && hosts[to].preference === hosts[from].preference) to++;
    shuffleRange(hosts, from, to, random);
    from = to;
  }
  return { kind: 'hosts', hosts: hosts.slice(0, Math.max(1, opts.maxHosts)) };
}
