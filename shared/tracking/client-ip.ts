/**
 * What the tracker keeps of a client address: IPv4 truncated to its /24, IPv6 to its /48
 * (IPv4-mapped IPv6 as IPv4). Enough for coarse geography and abuse analysis, not a person.
 */
import ipaddr from 'ipaddr.js';

/** `203.0.113.0`, `2001:db8:abcd::`, or '' when `ip` is not an address. */
export function truncateIp(ip: string | undefined): string {
  if (!ip || !ipaddr.isValid(ip)) return '';
  let addr = ipaddr.parse(ip);
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) addr = (addr as ipaddr.IPv6).toIPv4Address();
  if (addr.kind() === 'ipv4') {
    const o = (addr as ipaddr.IPv4).octets;
    return `${o[0]}.${o[1]}.${o[2]}.0`;
  }
  const parts = (addr as ipaddr.IPv6).parts.slice(0, 3);
  return new ipaddr.IPv6([...parts, 0, 0, 0, 0, 0]).toString();
}

/** Parsed CIDR ranges; throws naming the bad entry (config checks call it at start-up). */
export function parseCidrs(cidrs: readonly string[]): Array<[ipaddr.IPv4 | ipaddr.IPv6, number]> {
  return cidrs.map((c) => {
    try {
      return ipaddr.parseCIDR(c);
    } catch {
      throw new TypeError(`${JSON.stringify(c)} is not a CIDR range (e.g. 17.0.0.0/8)`);
    }
  });
}

/** Whether `ip` lies in one of `ranges`. */
export function inRanges(ip: string | undefined, ranges: ReadonlyArray<[ipaddr.IPv4 | ipaddr.IPv6, number]>): boolean {
  if (!ip || ranges.length === 0 || !ipaddr.isValid(ip)) return false;
  const addr = ipaddr.process(ip);
  return ranges.some(([net, bits]) => net.kind() === addr.kind() && addr.match(net, bits));
}
