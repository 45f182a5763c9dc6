/**
 * The DKIM step of rendering: signs the composed message with the key of its From domain (or
 * a parent domain, see `signingCandidates`), once, before the bytes go into every dispatch
 * record, so every delivery attempt and retry sends the same signed message.
 *
 * Without a key, or when signing fails, `missingKey` decides: `unsigned` sends the message
 * as it is; `refuse` throws a PermanentError (DKIM_KEY_MISSING, DKIM_SIGN_FAILED) and the
 * record is dead-lettered.
 */
import type { DkimKey } from '../../shared/dkim/dkim-keys.js';
import { dkimSign, type DkimSignature } from '../../shared/dkim/dkim-signer.js';
import { PermanentError } from '../../shared/errors.js';

export interface DkimPolicy {
  keys: { keyFor(fromDomain: string): DkimKey | undefined };
  missingKey: 'unsigned' | 'refuse';
}

export interface SignOutcome {
  raw: Buffer;
  /** Set when the message was signed. */
  signature?: Omit<DkimSignature, 'raw'>;
  /** Set when it went out unsigned though signing is configured. */
  unsigned?: 'missing-key' | 'sign-failed';
  /** The signing error, when `unsigned` is 'sign-failed'. */
  error?: Error;
}

export async function signMessage(raw: Buffer, fromDomain: string, signTime: Date, policy: DkimPolicy): Promise<SignOutcome> {
  const key = policy.keys.keyFor(fromDomain);
  if (!key) {
    if (policy.missingKey === 'refuse') {
      throw new PermanentError('DKIM_KEY_MISSING', `no DKIM key for ${fromDomain} or its parent domains in the keys directory, and renderer.dkim.missingKey is "refuse"`);
    }
    return { raw, unsigned: 'missing-key' };
  }
  try {
    const { raw: signed, ...signature } = await dkimSign(raw, key, signTime);
    return { raw: signed, signature };
  } catch (err) {
    if (policy.missingKey === 'refuse') {
      throw new PermanentError('DKIM_SIGN_FAILED', `signing with ${key.file} failed: ${(err as Error).message}`, { cause: err });
    }
    return { raw, unsigned: 'sign-failed', error: err as Error };
  }
}
