/**
 * Pure decisions about inbound routes: what a domain must look like, who owns a domain when two
 * tenants claim it, and whether a recipient address falls under a route.
 */
import { domainToASCII } from 'node:url';
import type { InboundRoute } from '../contracts/inbound-route.js';

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** The domain as stored (lower-case IDNA ASCII, no trailing dot), or why it cannot be a route. */
export function normalizeInboundDomain(input: string): string | { message: string } {
  const raw = input.trim().replace(/\.$/, '');
  if (raw === '' || /[\s@/\\[\]]/.test(raw)) return { message: `"${input.slice(0, 100)}" is not a domain name` };
  const ascii = domainToASCII(raw).toLowerCase();
  const labels = ascii.split('.');
  if (ascii === '' || ascii.length > 253 || labels.length < 2 || !labels.every((l) => LABEL.test(l)) || /^[0-9]+$/.test(labels.at(-1)!)) {
    return { message: `"${input.slice(0, 100)}" is not a fully qualified domain name` };
  }
  return ascii;
}

/**
 * The stored value when a domain's record is written again. The first claim wins: a claim by
 * another tenant while the domain is taken leaves the owner's record (the claimant then answers
 * 409). The owner may rewrite its own route (its local parts); `createdAt` stays the first one.
 */
export function mergeClaim(previous: InboundRoute | undefined, next: InboundRoute): InboundRoute {
  if (!previous) return next;
  if (previous.tenant !== next.tenant) return previous;
  return { ...next, createdAt: previous.createdAt };
}

/** `local@domain` split at the last `@`, the domain normalized; undefined when it is not an address. */
export function splitRecipient(address: string): { local: string; domain: string } | undefined {
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return undefined;
  const domain = normalizeInboundDomain(address.slice(at + 1));
  return typeof domain === 'string' ? { local: address.slice(0, at), domain } : undefined;
}

/** True when the route takes mail for `local` (case-insensitive; `name+tag` counts as `name`). */
export function acceptsLocalPart(route: Pick<InboundRoute, 'localParts'>, local: string): boolean {
  if (!route.localParts) return true;
  const l = local.toLowerCase();
  const plus = l.indexOf('+');
  const base = plus > 0 ? l.slice(0, plus) : l;
  return route.localParts.includes(l) || route.localParts.includes(base);
}
