/**
 * Signs a raw message with DKIM (RFC 6376; Ed25519 per RFC 8463), relaxed/relaxed, with a key
 * already parsed into a KeyObject.
 *
 * The canonicalisation (body hash, header canonicalisation, the signature header's format) is
 * mailauth's own code, called through its modules; only the final `crypto.sign` is done here,
 * for two things mailauth 4.13's `dkimSign` cannot do: sign with a KeyObject (it parses a PEM
 * string on every message) and over-sign headers (its `h=` lists only the headers present).
 * `test/renderer/dkim-signing.test.ts` checks every signature with mailauth's verifier.
 *
 * Signed headers: mailauth's default list (From, Sender, Reply-To, Subject, Date, Message-ID, To,
 * Cc, MIME-Version, Content-*, List-Unsubscribe, …) plus List-Unsubscribe-Post; From, Subject,
 * Date, Message-ID, To and the List-Unsubscribe pair are over-signed (listed once more than they
 * occur), so a relay or attacker cannot add a second one without breaking the signature.
 *
 * The signature time is the caller's (`acceptedAt`): RSA PKCS#1 v1.5 and Ed25519 signatures are
 * deterministic, so signing the same message again (a re-render after a crash) yields the same bytes.
 *
 * The RSA private-key operation runs on libuv's thread pool (`crypto.sign` with a callback): an
 * RSA-2048 signature costs about as much CPU as composing the message, and this way it does not
 * hold the event loop, so rendering and signing can use two cores.
 */
import { createHash, sign, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { createRequire } from 'node:module';
import type { DkimKey } from './dkim-keys.js';

interface HeaderLine {
  key: string | null;
  casedKey: string | undefined;
  line: Buffer;
}
interface SigningLines {
  keys: string;
  headers: HeaderLine[];
}
interface BodyHasher {
  update(chunk: Buffer): void;
  digest(encoding: 'base64'): string;
}
interface MailauthTools {
  parseHeaders(buf: Buffer): { parsed: HeaderLine[] };
  getSigningHeaderLines(parsed: HeaderLine[], fieldNames: string): SigningLines;
  formatSignatureHeaderLine(type: 'DKIM', values: Record<string, unknown>, folded: boolean): string;
  defaultDKIMFieldNames: string;
}

const require = createRequire(import.meta.url);
const tools = require('mailauth/lib/tools.js') as MailauthTools;
const { dkimBody } = require('mailauth/lib/dkim/body/index.js') as { dkimBody(canon: string, hash: string, maxLength: false): BodyHasher };
const { generateCanonicalizedHeader } = require('mailauth/lib/dkim/header/index.js') as {
  generateCanonicalizedHeader(type: 'DKIM', lines: SigningLines, opts: Record<string, unknown>): { canonicalizedHeader: Buffer; dkimHeaderOpts: Record<string, unknown> };
};

/** Headers signed when present (mailauth's defaults + RFC 8058's List-Unsubscribe-Post). */
export const SIGNED_HEADERS = `${tools.defaultDKIMFieldNames}:List-Unsubscribe-Post`;
/** Headers listed once more than they occur in `h=`. */
export const OVERSIGNED_HEADERS = ['From', 'To', 'Subject', 'Date', 'Message-ID', 'List-Unsubscribe', 'List-Unsubscribe-Post'];

export interface DkimSignature {
  /** The message with its `DKIM-Signature` header prepended. */
  raw: Buffer;
  domain: string;
  selector: string;
  algorithm: 'rsa-sha256' | 'ed25519-sha256';
}

function headerEnd(raw: Buffer): number {
  const at = raw.indexOf('\r\n\r\n');
  if (at >= 0) return at + 4;
  const lf = raw.indexOf('\n\n');
  return lf >= 0 ? lf + 2 : raw.length;
}

/** `h=`'s list: the present headers (bottom-up, as mailauth picks them), then one more of each over-signed header. */
function signingLines(parsed: HeaderLine[]): SigningLines {
  const present = tools.getSigningHeaderLines(parsed, SIGNED_HEADERS);
  const extra = OVERSIGNED_HEADERS.filter((name) => present.headers.some((h) => h.key === name.toLowerCase()));
  return { keys: [present.keys, ...extra].filter(Boolean).join(': '), headers: present.headers };
}

const signAsync = promisify(sign) as (algorithm: string | null, data: Buffer, key: KeyObject) => Promise<Buffer>;

/** Signs `raw` (CRLF line breaks) with `key`; rejects on a crypto failure. */
export async function dkimSign(raw: Buffer, key: Pick<DkimKey, 'domain' | 'selector' | 'type' | 'privateKey'>, signTime: Date): Promise<DkimSignature> {
  const split = headerEnd(raw);
  const { parsed } = tools.parseHeaders(raw.subarray(0, split));
  const body = dkimBody('relaxed', 'sha256', false);
  body.update(raw.subarray(split));
  const algorithm = key.type === 'rsa' ? 'rsa-sha256' : 'ed25519-sha256';
  const { canonicalizedHeader, dkimHeaderOpts } = generateCanonicalizedHeader('DKIM', signingLines(parsed), {
    signingDomain: key.domain,
    selector: key.selector,
    algorithm,
    canonicalization: 'relaxed/relaxed',
    bodyHash: body.digest('base64'),
    signTime,
  });
  dkimHeaderOpts.b = await signatureOf(canonicalizedHeader, key.type, key.privateKey);
  const header = tools.formatSignatureHeaderLine('DKIM', dkimHeaderOpts, true);
  return { raw: Buffer.concat([Buffer.from(`${header}\r\n`), raw]), domain: key.domain, selector: key.selector, algorithm };
}

async function signatureOf(data: Buffer, type: DkimKey['type'], privateKey: KeyObject): Promise<string> {
  // RFC 8463: Ed25519 signs the SHA-256 of the canonicalised header (PureEdDSA over the hash).
  // Ed25519 signs in ~50 µs, less than a hop to the thread pool costs: it stays on the loop.
  const signature = type === 'rsa' ? await signAsync('sha256', data, privateKey) : sign(null, createHash('sha256').update(data).digest(), privateKey);
  return signature.toString('base64');
}
