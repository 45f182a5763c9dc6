/**
 * Recipient addresses → SMTP envelope addresses grouped by domain. A dispatch record goes to
 * one domain, so a dispatcher replica owns each domain's throttles and connections.
 * Pure functions.
 */
import { domainToASCII } from 'node:url';

export interface EnvelopeAddress {
  /** Local part as given: it is case-sensitive by RFC 5321. */
  local: string;
  /** Lower-case ASCII (punycode) domain, no trailing dot. */
  domain: string;
  /** `local@domain`, what goes into MAIL FROM / RCPT TO. */
  address: string;
}

export interface DomainGroup {
  domain: string;
  recipients: string[];
}

/** Characters a local part may not hold unquoted (quoted local parts are not accepted). */
const BAD_LOCAL = /[\s<>()[\],;:\\"@\u0000-\u001f\u007f]/;
/** One DNS label of an ASCII host name (RFC 1123). */
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * Splits and normalises an address; undefined when it is not a usable mailbox. IDN domains
 * become punycode (`bücher.de` → `xn--bcher-kva.de`), domains fold to lower case.
 */
export function parseEnvelopeAddress(email: string): EnvelopeAddress | undefined {
  const at = email.lastIndexOf('@');
  if (at <= 0 || at === email.length - 1) return undefined;
  const local = email.slice(0, at);
  if (local.length > 64 || BAD_LOCAL.test(local) || local.startsWith('.') || local.endsWith('.') || local.includes('..')) return undefined;
  const raw = email.slice(at + 1).replace(/\.$/, '');
  // domainToASCII applies UTS #46 (case folding, punycode) and returns '' for what is not a host name.
  const domain = /^[^\s/?#[\]@%\\]+$/.test(raw) ? domainToASCII(raw) : '';
  if (!domain || domain.length > 253 || !domain.split('.').every((label) => LABEL.test(label))) return undefined;
  return { local, domain, address: `${local}@${domain}` };
}

/**
 * Groups envelope addresses by domain, in order of first appearance; an address listed twice
 * (e.g. in to and cc) gets one RCPT TO.
 */
export function groupByDomain(addresses: EnvelopeAddress[]): DomainGroup[] {
  const groups = new Map<string, Set<string>>();
  for (const a of addresses) {
    let set = groups.get(a.domain);
    if (!set) groups.set(a.domain, (set = new Set()));
    set.add(a.address);
  }
  return [...groups].map(([domain, set]) => ({ domain, recipients: [...set] }));
}
