/**
 * Addresses of a send request, accepted as "a@b.c", "Name <a@b.c>" or { email, name }.
 * IDN domains are allowed: the domain is converted to its IDNA ASCII form (punycode,
 * lower-case) — the form SMTP envelopes need and the one MIME headers carry anyway — while
 * the display name is kept as given. Anything that could smuggle a header (CR, LF, NUL) is
 * rejected before parsing, because the parser would silently fold it into a space.
 */
import { domainToASCII } from 'node:url';
import addressparser from 'nodemailer/lib/addressparser';
import type { Address } from '../../shared/contracts/email-requested.js';

export type AddressInput = string | { email: string; name?: string };
export type AddressResult = { ok: true; address: Address } | { ok: false; message: string };

const CONTROL = /[\r\n\u0000]/;
/** RFC 5322 dot-atom of atext: the local parts a sending API should accept. */
const DOT_ATOM = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;
const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;
const MAX_NAME = 200;

export const CONTROL_MESSAGE = 'must not contain CR, LF or NUL';

/** True when a value could break out of a header line. */
export function hasControlChars(value: string): boolean {
  return CONTROL.test(value);
}

const fail = (message: string): AddressResult => ({ ok: false, message });

export function parseAddress(input: AddressInput): AddressResult {
  let email: string;
  let name: string | undefined;
  if (typeof input === 'string') {
    if (hasControlChars(input)) return fail(CONTROL_MESSAGE);
    const parsed = addressparser(input, { flatten: true });
    if (parsed.length !== 1) return fail(parsed.length === 0 ? 'is not an address' : 'must be a single address');
    email = parsed[0].address;
    name = parsed[0].name || undefined;
  } else {
    if (hasControlChars(input.email) || (input.name !== undefined && hasControlChars(input.name))) return fail(CONTROL_MESSAGE);
    email = input.email.trim();
    name = input.name?.trim() || undefined;
  }
  if (name !== undefined && name.length > MAX_NAME) return fail(`name is longer than ${MAX_NAME} characters`);
  const mailbox = normalizeMailbox(email);
  if (typeof mailbox !== 'string') return fail(mailbox.message);
  return { ok: true, address: name === undefined ? { email: mailbox } : { email: mailbox, name } };
}

/** `local@domain` with the domain in IDNA ASCII, or why the address is not acceptable. */
export function normalizeMailbox(email: string): string | { message: string } {
  const at = email.lastIndexOf('@');
  if (at <= 0 || at === email.length - 1) return { message: `"${email}" is not an email address` };
  const local = email.slice(0, at);
  const domain = email.slice(at + 1);
  if (local.length > 64 || !DOT_ATOM.test(local)) return { message: `"${email}" has an invalid local part (ASCII dot-atom only)` };
  if (domain.startsWith('[')) return { message: `"${email}": address literals are not accepted` };
  const ascii = domainToASCII(domain);
  if (!isHostname(ascii)) return { message: `"${email}" has an invalid domain` };
  const out = `${local}@${ascii}`;
  if (out.length > 254) return { message: `"${email}" is longer than 254 characters` };
  return out;
}

/** A fully qualified host name: two or more LDH labels, a non-numeric top-level label. */
function isHostname(domain: string): boolean {
  if (domain === '' || domain.length > 253) return false;
  const labels = domain.split('.');
  if (labels.length < 2 || !labels.every((l) => LABEL.test(l))) return false;
  return !/^[0-9]+$/.test(labels[labels.length - 1]);
}
