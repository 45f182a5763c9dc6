/**
 * The DNS side of a DKIM key: the TXT record to publish at `<selector>._domainkey.<domain>`
 * (RFC 6376 §3.6.1; Ed25519 per RFC 8463: `p=` is the raw 32-byte public key) and the
 * comparison of a published record with a local key. Pure.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import type { DkimKeyType } from './dkim-keys.js';

/** A TXT record's character-strings are at most 255 bytes each (RFC 1035 §3.3). */
export const TXT_STRING_MAX = 255;

/** The `p=` value of a key: SPKI DER for RSA, the raw 32 bytes for Ed25519, base64. */
export function publicKeyValue(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  const der = pub.export({ type: 'spki', format: 'der' });
  return (pub.asymmetricKeyType === 'ed25519' ? der.subarray(der.length - 32) : der).toString('base64');
}

export function dkimRecordName(selector: string, domain: string): string {
  return `${selector}._domainkey.${domain}`;
}

/** `v=DKIM1; k=…; p=…` for the key. */
export function dkimRecordValue(key: KeyObject, type: DkimKeyType): string {
  return `v=DKIM1; k=${type}; p=${publicKeyValue(key)}`;
}

/** Splits a TXT value into character-strings of at most 255 bytes (they are concatenated by readers). */
export function txtStrings(value: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < value.length; i += TXT_STRING_MAX) out.push(value.slice(i, i + TXT_STRING_MAX));
  return out;
}

/** The record as a zone-file line: `name IN TXT ( "…" "…" )`. */
export function zoneLine(name: string, value: string): string {
  const parts = txtStrings(value).map((s) => `"${s}"`);
  return parts.length === 1 ? `${name}. IN TXT ${parts[0]}` : `${name}. IN TXT (\n  ${parts.join('\n  ')} )`;
}

/** Tags of a `tag=value; …` record (DKIM, DMARC), names lower-cased, whitespace removed from values. */
export function parseTagList(record: string): Map<string, string> {
  const tags = new Map<string, string>();
  for (const part of record.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    tags.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).replace(/\s+/g, ''));
  }
  return tags;
}
