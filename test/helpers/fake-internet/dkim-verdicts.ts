/**
 * DKIM verdicts of a received message from an independent verifier — mailauth's `dkimVerify`,
 * not the signing code path — resolving public keys in the fake DNS.
 */
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import type { ResolveFunction } from './dns-server.js';

/** One DKIM signature's verdict. */
export interface DkimVerdict {
  /** `pass`, `fail` (bad signature), `neutral` (mailauth's answer to a changed body, or a missing key), … */
  result: string;
  domain: string;
  selector: string | undefined;
  algorithm: string | undefined;
  /** Header fields the signature covers (its `h=` tag), lower-case. */
  signedHeaders: string[];
  comment: string | undefined;
}

/** One verdict per DKIM-Signature header of `raw`; empty for an unsigned message. */
export async function verifyDkim(raw: Buffer, from: string, resolver: ResolveFunction): Promise<DkimVerdict[]> {
  const { results } = await dkimVerify(raw, { resolver: resolver as never, sender: from || undefined });
  // at run time mailauth 4.13 names the algorithm `algo` (its types say `algorithm`)
  type RawResult = (typeof results)[number] & { algo?: string; signingHeaders?: { keys?: string } };
  return (results as RawResult[])
    .filter((r) => r.signingDomain)
    .map((r) => ({
      result: r.status.result,
      domain: r.signingDomain,
      selector: r.selector,
      algorithm: r.algo ?? r.algorithm,
      signedHeaders: (r.signingHeaders?.keys ?? '').split(':').map((h) => h.trim().toLowerCase()).filter(Boolean),
      comment: r.status.comment,
    }));
}
