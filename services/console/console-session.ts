/**
 * Console sessions are stateless: the session is an encrypted, authenticated cookie
 * (`@fastify/secure-session`, XSalsa20-Poly1305) holding the API key the user signed in with,
 * the tenant an admin switched to, and the sign-in and last-request times. Why stateless: every
 * ingest replica can serve every request (no sticky sessions, no shared store), and nothing is
 * lost on a restart. The cost — a cookie cannot be recalled — is bounded by checking the key
 * itself on every request (`ApiKeyStore.identify`: a revoked key ends its sessions at their next
 * request on every replica) and by the idle and absolute limits below, enforced here from the
 * times inside the sealed cookie (a client cannot change them).
 *
 * The sealing keys are derived (HKDF-SHA256, label "postline console session") from
 * `feedback.keys`, which every ingest replica already shares; the first key seals, all open
 * (rotation follows the feedback keys'). Without feedback keys a random key per process is used:
 * sessions then work on one replica and end when it restarts.
 */
import { hkdfSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { PostlineConfig } from '../../shared/config.js';

/** What the sealed cookie holds. */
export interface ConsoleSession {
  /** The API key signed in with (never logged, never sent back to the browser in clear). */
  key: string;
  /** The tenant an admin key switched to; absent: the key's own. */
  tenant?: string;
  /** Sign-in time (ms). */
  createdAt: number;
  /** Time of the last request (ms). */
  seenAt: number;
}

export interface SessionLimits {
  idleTimeoutMs: number;
  absoluteTimeoutMs: number;
}

/** Pure: is a session still usable at `now`, and if not, why. */
export function sessionStatus(s: Pick<ConsoleSession, 'createdAt' | 'seenAt'>, now: number, limits: SessionLimits): 'live' | 'idle' | 'expired' {
  if (!(now - s.createdAt < limits.absoluteTimeoutMs)) return 'expired';
  if (!(now - s.seenAt < limits.idleTimeoutMs)) return 'idle';
  return 'live';
}

/** Whether a decoded cookie value has the session's shape (an old or foreign cookie does not). */
export function isConsoleSession(v: unknown): v is ConsoleSession {
  const s = v as ConsoleSession | undefined;
  return !!s && typeof s.key === 'string' && typeof s.createdAt === 'number' && typeof s.seenAt === 'number' && (s.tenant === undefined || typeof s.tenant === 'string');
}

/** 32-byte sealing keys derived from the feedback secrets, first first; one random key when there are none. */
export function sessionKeysFrom(secrets: readonly string[]): { keys: Buffer[]; random: boolean } {
  if (secrets.length === 0) return { keys: [randomBytes(32)], random: true };
  return { keys: secrets.map((s) => Buffer.from(hkdfSync('sha256', Buffer.from(s, 'utf8'), Buffer.alloc(0), 'postline console session', 32))), random: false };
}

/** The feedback secrets of the configuration (`feedback.keys`, then `feedback.keysFile`, already checked by loadFeedbackKeyring). */
export function feedbackSecrets(config: PostlineConfig['feedback'], read: (f: string) => string = (f) => readFileSync(f, 'utf8')): string[] {
  const fromFile = config.keysFile ? (JSON.parse(read(config.keysFile)) as Array<{ secret: string }>) : [];
  return [...config.keys, ...fromFile].map((k) => k.secret);
}
