/**
 * Which `From` domains a tenant may send from: those of configuration (`ingest.senderDomains`)
 * and those administrators add (`/v1/admin/domains`, `postline domains add`, on `email.admin`),
 * joined live (`withAdministeredDomains`). A tenant named by neither may use any domain, as
 * before; once a tenant has a domain from either, it may use only its domains. The
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

/**
 * Pure: why `tenant` may not claim `domain` (IDNA ASCII, lower case) as an inbound domain, or
 * undefined. A tenant whose sender domains are named may claim those and their subdomains (a
 * `*.example.com` entry: the subdomains only) — the operator vouched for them; a tenant named by
 * no policy may claim any domain, as it may send from any (the open default). Without this, any
 * tenant could claim another's domain before its owner did and read its mail.
 */
export function inboundDomainProblem(policy: SenderDomainPolicy, tenant: string, domain: string): string | undefined {
  const allowed = policy.domainsOf(tenant);
  if (allowed === undefined) return undefined;
  const ok = allowed.some((d) => (d.startsWith('*.') ? domain.endsWith(d.slice(1)) : domain === d || domain.endsWith(`.${d}`)));
  if (ok) return undefined;
  return allowed.length === 0 ? 'this tenant has no sender domains yet: an administrator adds them (postline domains add)' : `${domain} is not one of this tenant's sender domains or their subdomains (${allowed.join(', ')})`;
}

/**
 * The configured policy joined with administered domains (`added(tenant)`, read live from
 * `email.admin`): a tenant may use the union of both; undefined (any domain) only when neither
 * names it. Every call reads the current state, so an added or removed domain applies at once.
 */
export function withAdministeredDomains(configured: SenderDomainPolicy, added: { domainsOf(tenant: string): readonly string[] | undefined }): SenderDomainPolicy {
  return {
    domainsOf(tenant) {
      const a = configured.domainsOf(tenant);
      const b = added.domainsOf(tenant);
      if (a === undefined) return b;
      if (b === undefined) return a;
      return [...new Set([...a, ...b])];
    },
  };
}
