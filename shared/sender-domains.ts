/**
 * Which `From` domains a tenant may send from. Today the policy comes from configuration
 * (`ingest.senderDomains`); a tenant it does not name may use any domain, as before. The
 * ingest API checks it (400 naming `from`) and so does the renderer (SENDER_DOMAIN dead letter),
 * because anyone may produce to `email.requested`. Both only ask `domainsOf`, so a policy read
 * from elsewhere (an administration topic, verified sending domains) replaces this one without
 * touching either. Tenants are matched exactly: `acme` owns nothing of `acme/eu`.
 */
import { domainToASCII } from 'node:url';

export interface SenderDomainPolicy {
  /** The domains `tenant` may use in `from` (`example.com`, or `*.example.com` for its subdomains); undefined: any. */
  domainsOf(tenant: string): readonly string[] | undefined;
}

/** Any tenant, any domain: the default. */
export const ANY_SENDER_DOMAIN: SenderDomainPolicy = { domainsOf: () => undefined };

/** The policy of `ingest.senderDomains` ({ tenant: [domain, ...] }); domains compared in IDNA ASCII, case-insensitively. */
export function configuredSenderDomains(byTenant: Readonly<Record<string, readonly string[]>>): SenderDomainPolicy {
  const table = new Map(Object.entries(byTenant).map(([tenant, list]) => [tenant, list.map(normalizeEntry)]));
  return { domainsOf: (tenant) => table.get(tenant) };
}

function normalizeEntry(entry: string): string {
  const wildcard = entry.startsWith('*.');
  const ascii = domainToASCII(wildcard ? entry.slice(2) : entry) || entry.toLowerCase();
  return wildcard ? `*.${ascii}` : ascii;
}

/** Pure: why `tenant` may not send from `email` (an address whose domain is already IDNA ASCII), or undefined. */
export function senderDomainProblem(policy: SenderDomainPolicy, tenant: string, email: string): string | undefined {
  const allowed = policy.domainsOf(tenant);
  if (allowed === undefined) return undefined;
  const domain = email.slice(email.lastIndexOf('@') + 1).toLowerCase();
  const ok = allowed.some((d) => (d.startsWith('*.') ? domain.endsWith(d.slice(1)) : domain === d));
  if (ok) return undefined;
  return allowed.length === 0 ? 'this tenant may not send from any domain yet' : `the domain "${domain}" is not one of this tenant's sender domains (${allowed.join(', ')})`;
}
