/**
 * Signed feedback tokens: what ties mail coming back (a bounce, a complaint, an unsubscribe, a
 * provider's notification) to the message and recipient it is about, without a database. The
 * renderer puts them into each recipient's copy: the return path (VERP, `b-<token>@<domain>`),
 * the `List-Unsubscribe` URL and mailto, and the `X-Postline-Ref` header. Whoever receives one
 * back verifies its MAC and learns the tenant, message and recipient from the token itself.
 *
 * Layout (bytes, then lower-case base32 without padding, so MTAs that fold case do no harm):
 *   [version:2 | purpose:2 | key id:4] [message id] [tenant] [recipient] ([from domain] [list]) [MAC]
 * Strings are a length byte + UTF-8; a canonical UUID message id (ingest's ids) is flag 0xFF +
 * 16 bytes. A return path is kept short: it carries a 4-byte hash of the recipient instead of
 * the address and no from domain or list, so `b-<token>` stays within SMTP's 64-octet local
 * part for tenant names up to 8 bytes (longer ones make it longer, which most MTAs accept, as
 * they do SRS addresses); the inbound service matches the hash against the addresses a bounce names.
 * The MAC is HMAC-SHA256 over everything before it, truncated to 8 bytes (forging one takes
 * ~2^64 online guesses), compared in constant time; the purpose is signed too, so a return-path
 * token is never an unsubscribe.
 *
 * Tracking (purpose `track`, the tracker's open pixel and click redirects): after the recipient
 * come a kind byte (0 open, 1 click), the link index (2 bytes) and when the message was sent at
 * the earliest (4 bytes, Unix seconds: its acceptance or sendAt), no from domain or list. A click
 * token is bound to its link's URL, which travels next to it (`/c/<token>?u=<url>`) instead of
 * inside it: the MAC covers the body and SHA-256 of that URL, so a changed URL fails to verify.
 */
import * as crypto from 'node:crypto';
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { base32, codec } from 'rfc4648';

export type FeedbackPurpose = 'return-path' | 'unsubscribe' | 'ref' | 'track';

const PURPOSES: readonly FeedbackPurpose[] = ['return-path', 'unsubscribe', 'ref', 'track'];
const TRACK_KINDS = ['open', 'click'] as const;
const MAX_LINK_INDEX = 0xffff;
const VERSION = 1;
const MAC_BYTES = 8;
const MAX_KEY_ID = 15;
const UUID_FLAG = 0xff;
const RECIPIENT_HASH_BYTES = 4;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface FeedbackKey {
  id: number;
  secret: string;
}

/** What a token says. `recipient` is the full address, except in a return path (see `recipientHash`). */
export interface FeedbackRef {
  purpose: FeedbackPurpose;
  messageId: string;
  tenant: string;
  /** Lower-cased recipient address; '' in a return-path token (only its hash is carried). */
  recipient: string;
  /** Return paths: the first 4 bytes of SHA-256 of the lower-cased recipient, hex. Others: the same, computed. */
  recipientHash: string;
  /** The sending (From) domain, when known (never in a return path). */
  fromDomain?: string;
  /** The mailing list (unsubscribe scope), when the message named one (never in a return path). */
  listId?: string;
  /**
   * `track` tokens only: an open pixel or the click of link `linkIndex` (0-based, in document
   * order); `issuedAt` (Unix seconds) is the earliest the message could have been sent.
   */
  track?: { kind: 'open' | 'click'; linkIndex: number; issuedAt: number };
}

export type RefInput = Omit<FeedbackRef, 'recipientHash'>;

/** Signs with the first key; verifies with any. Built once from config (`feedback.keys` + `keysFile`). */
export class FeedbackKeyring {
  private readonly byId = new Map<number, Buffer>();

  constructor(private readonly keys: readonly FeedbackKey[]) {
    for (const k of keys) if (!this.byId.has(k.id)) this.byId.set(k.id, Buffer.from(k.secret, 'utf8'));
  }

  /** False when no key is configured: nothing is signed or accepted. */
  get enabled(): boolean {
    return this.keys.length > 0;
  }

  /**
   * The token for `ref`, signed with the current (first) key. `bound` (a click's URL) is signed
   * with it but not carried: `verify` needs the same string.
   */
  sign(ref: RefInput, bound?: string): string {
    const key = this.keys[0];
    if (!key) throw new Error('no feedback key configured (feedback.keys)');
    // The body and its MAC in one buffer, written once (the renderer signs a few tokens per recipient).
    const token = encodeBody(ref, key.id, MAC_BYTES);
    const body = token.subarray(0, token.length - MAC_BYTES);
    hmac(this.byId.get(key.id)!, body, bound).copy(token, body.length);
    return codec.stringify(token, LOWER_BASE32, { pad: false });
  }

  /**
   * The ref a token carries, or undefined when it is malformed, signed by an unknown key or
   * tampered with (or, for a token signed with `bound`, given another `bound`). Never throws.
   */
  verify(token: string, purpose?: FeedbackPurpose, bound?: string): FeedbackRef | undefined {
    let bytes: Uint8Array;
    try {
      if (token.length === 0 || token.length > 1024) return undefined;
      bytes = base32.parse(token.toUpperCase(), { loose: true });
    } catch {
      return undefined;
    }
    if (bytes.length < 3 + MAC_BYTES) return undefined;
    const buf = Buffer.from(bytes);
    const body = buf.subarray(0, buf.length - MAC_BYTES);
    const secret = this.byId.get(body[0] & MAX_KEY_ID);
    if (!secret) return undefined;
    const expected = hmac(secret, body, bound);
    if (!timingSafeEqual(expected, buf.subarray(buf.length - MAC_BYTES))) return undefined;
    const ref = decodeBody(body);
    if (!ref || (purpose && ref.purpose !== purpose)) return undefined;
    return ref;
  }
}

/** First 4 bytes of SHA-256 of the lower-cased address, hex: how a return path names its recipient. */
export function recipientHash(address: string): string {
  return recipientHashBytes(address).toString('hex');
}

/** The bytes `recipientHash` writes in hex: what a return-path token carries. */
function recipientHashBytes(address: string): Buffer {
  return sha256(address.toLowerCase()).subarray(0, RECIPIENT_HASH_BYTES);
}

/** RFC 4648 base32 in lower case: what tokens are written in (parsing folds case anyway). */
const LOWER_BASE32 = { chars: 'abcdefghijklmnopqrstuvwxyz234567', bits: 5 };

/** SHA-256 of a UTF-8 string; Node's one-shot `crypto.hash` (20.12+) where it exists, at about half the cost of a Hash object. */
const sha256: (data: string) => Buffer =
  typeof crypto.hash === 'function' ? (data) => crypto.hash('sha256', data, 'buffer') : (data) => createHash('sha256').update(data, 'utf8').digest();

/** Local part prefix of return paths (`b-<token>@domain`) and mailto unsubscribes (`u-<token>@domain`). */
export const RETURN_PATH_PREFIX = 'b-';
export const UNSUBSCRIBE_MAILTO_PREFIX = 'u-';

/** The signed return path of one recipient's copy. */
export function returnPathOf(keyring: FeedbackKeyring, domain: string, ref: Omit<RefInput, 'purpose'>): string {
  const token = keyring.sign({ ...ref, purpose: 'return-path' });
  return `${RETURN_PATH_PREFIX}${token}@${domain}`;
}

/** The token of a local part with `prefix` (`b-…`, `u-…`), or undefined. Ignores `+detail` suffixes. */
export function tokenOfLocalPart(localPart: string, prefix: string): string | undefined {
  const lower = localPart.toLowerCase();
  if (!lower.startsWith(prefix)) return undefined;
  const token = lower.slice(prefix.length).split('+')[0];
  return /^[a-z2-7]+$/.test(token) ? token : undefined;
}

function hmac(secret: Buffer, body: Buffer, bound?: string): Buffer {
  const mac = createHmac('sha256', secret).update(body);
  // A fixed-size digest after the body: no byte can move between the body and the bound string.
  if (bound !== undefined) mac.update(sha256(bound));
  return mac.digest().subarray(0, MAC_BYTES);
}

/**
 * The token's body, followed by `room` bytes left for its MAC, in one buffer. Written into a
 * scratch buffer that holds the longest body (every string field at most 255 bytes), then copied
 * once: no per-field buffers.
 */
function encodeBody(ref: RefInput, keyId: number, room: number): Buffer {
  const purpose = PURPOSES.indexOf(ref.purpose);
  if (purpose < 0) throw new TypeError(`unknown feedback purpose ${String(ref.purpose)}`);
  if (!Number.isInteger(keyId) || keyId < 0 || keyId > MAX_KEY_ID) throw new TypeError(`feedback key id ${keyId} is outside 0–${MAX_KEY_ID}`);
  const w = new BodyWriter();
  w.byte((VERSION << 6) | (purpose << 4) | keyId);
  if (UUID.test(ref.messageId)) {
    w.byte(UUID_FLAG);
    w.hex(ref.messageId.replaceAll('-', ''));
  } else w.str(ref.messageId, 'messageId', 254);
  w.str(ref.tenant, 'tenant');
  if (ref.purpose === 'return-path') w.bytes(recipientHashBytes(ref.recipient));
  else if (ref.purpose === 'track') {
    w.str(ref.recipient.toLowerCase(), 'recipient');
    w.track(ref.track);
  } else {
    w.str(ref.recipient.toLowerCase(), 'recipient');
    w.str(ref.fromDomain ?? '', 'fromDomain');
    w.str(ref.listId ?? '', 'listId');
  }
  return w.done(room);
}

/** Longest body: version, a message id, four strings of a length byte and 255 bytes, the track bytes. */
const SCRATCH = Buffer.alloc(1 + 5 * 256 + 7);

class BodyWriter {
  private at = 0;

  byte(b: number): void {
    SCRATCH[this.at++] = b;
  }

  bytes(b: Buffer): void {
    this.at += b.copy(SCRATCH, this.at);
  }

  hex(h: string): void {
    this.at += SCRATCH.write(h, this.at, 'hex');
  }

  str(value: string, field: string, max = 255): void {
    const len = Buffer.byteLength(value, 'utf8');
    if (len > max) throw new TypeError(`${field} is ${len} bytes; a feedback token carries at most ${max}`);
    SCRATCH[this.at] = len;
    this.at += 1 + SCRATCH.write(value, this.at + 1, len, 'utf8');
  }

  track(track: FeedbackRef['track']): void {
    const kind = track ? TRACK_KINDS.indexOf(track.kind) : -1;
    if (!track || kind < 0) throw new TypeError('a track token needs track.kind open or click');
    if (!Number.isInteger(track.linkIndex) || track.linkIndex < 0 || track.linkIndex > MAX_LINK_INDEX) throw new TypeError(`link index ${track.linkIndex} is outside 0–${MAX_LINK_INDEX}`);
    SCRATCH.writeUInt8(kind, this.at);
    SCRATCH.writeUInt16BE(track.linkIndex, this.at + 1);
    // Unix seconds fit 32 bits until 2106; a bad value is clamped rather than refused.
    SCRATCH.writeUInt32BE(Math.min(0xffffffff, Math.max(0, Math.floor(track.issuedAt) || 0)), this.at + 3);
    this.at += 7;
  }

  /** A copy of what was written, with `room` zero bytes after it. */
  done(room: number): Buffer {
    const out = Buffer.alloc(this.at + room);
    SCRATCH.copy(out, 0, 0, this.at);
    return out;
  }
}

function decodeBody(body: Buffer): FeedbackRef | undefined {
  const version = body[0] >> 6;
  const purpose = PURPOSES[(body[0] >> 4) & 0x03];
  if (version !== VERSION || !purpose) return undefined;
  let at = 1;
  const read = (): string | undefined => {
    const len = body[at];
    if (len === undefined || at + 1 + len > body.length) return undefined;
    const s = body.subarray(at + 1, at + 1 + len).toString('utf8');
    at += 1 + len;
    return s;
  };
  let messageId: string | undefined;
  if (body[at] === UUID_FLAG) {
    if (at + 17 > body.length) return undefined;
    const h = body.subarray(at + 1, at + 17).toString('hex');
    messageId = `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
    at += 17;
  } else messageId = read();
  const tenant = read();
  let recipient: string | undefined;
  let hash: string;
  let fromDomain: string | undefined = '';
  let listId: string | undefined = '';
  let track: FeedbackRef['track'];
  if (purpose === 'return-path') {
    if (at + RECIPIENT_HASH_BYTES > body.length) return undefined;
    hash = body.subarray(at, at + RECIPIENT_HASH_BYTES).toString('hex');
    at += RECIPIENT_HASH_BYTES;
    recipient = '';
  } else if (purpose === 'track') {
    recipient = read();
    hash = recipient === undefined ? '' : recipientHash(recipient);
    const kind = TRACK_KINDS[body[at]];
    if (!kind || at + 7 > body.length) return undefined;
    track = { kind, linkIndex: body.readUInt16BE(at + 1), issuedAt: body.readUInt32BE(at + 3) };
    at += 7;
  } else {
    recipient = read();
    hash = recipient === undefined ? '' : recipientHash(recipient);
    fromDomain = read();
    listId = read();
  }
  if (!messageId || !tenant || recipient === undefined || fromDomain === undefined || listId === undefined || at !== body.length) return undefined;
  return {
    purpose,
    messageId,
    tenant,
    recipient,
    recipientHash: hash,
    ...(fromDomain ? { fromDomain } : {}),
    ...(listId ? { listId } : {}),
    ...(track ? { track } : {}),
  };
}
