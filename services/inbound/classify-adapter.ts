/**
 * The one place the inbound service gets a bounce's category and class from. It is meant to
 * re-export `classifyBounce` of shared/bounces/classify.ts (the bounce rule table); until that
 * module is on this branch, a stand-in that reads only the enhanced status code (RFC 3463)
 * answers with the same signature. Swap the body for
 * `export { classifyBounce } from '../../shared/bounces/classify.js';` once it is.
 */
export type BounceClass = 'recipient' | 'infrastructure' | 'content';

export interface BounceClassification {
  category: string;
  bounceClass: BounceClass;
}

export interface BounceReply {
  code?: number;
  enhanced?: string;
  text?: string;
}

const BY_ENHANCED: ReadonlyArray<[RegExp, BounceClassification]> = [
  [/^[45]\.1\.(1|10|3|6)$/, { category: 'unknown-user', bounceClass: 'recipient' }],
  [/^[45]\.2\.2$/, { category: 'mailbox-full', bounceClass: 'recipient' }],
  [/^[45]\.2\.1$/, { category: 'mailbox-disabled', bounceClass: 'recipient' }],
  [/^[45]\.3\.4$/, { category: 'message-too-large', bounceClass: 'content' }],
  [/^[45]\.7\.(1|0)$/, { category: 'policy', bounceClass: 'infrastructure' }],
  [/^[45]\.7\.(23|24|25|26|27)$/, { category: 'authentication', bounceClass: 'infrastructure' }],
  [/^[45]\.4\.[0-9]+$/, { category: 'dns', bounceClass: 'infrastructure' }],
];

/** Stand-in for shared/bounces/classify.ts `classifyBounce` (same signature). */
export function classifyBounce(reply: BounceReply): BounceClassification {
  const enhanced = reply.enhanced ?? '';
  for (const [pattern, result] of BY_ENHANCED) if (pattern.test(enhanced)) return result;
  return { category: 'other', bounceClass: 'infrastructure' };
}
