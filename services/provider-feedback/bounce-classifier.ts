/**
 * The one place provider feedback gets its bounce classifier from. At merge this file becomes
 * `export { classifyBounce } from '../../shared/bounces/classify.js'` (the rule table, written
 * in the classify branch); until then it is a small stand-in on the enhanced status code with
 * the same signature, so the parsers and their tests need no change.
 */
export type BounceClass = 'recipient' | 'infrastructure' | 'content';

export interface BounceInput {
  code?: number;
  enhanced?: string;
  text?: string;
}

export interface BounceClassification {
  category: string;
  bounceClass: BounceClass;
}

export type ClassifyBounce = (input: BounceInput) => BounceClassification;

const BY_ENHANCED: ReadonlyArray<[RegExp, BounceClassification]> = [
  [/^[45]\.1\.[1236]$/, { category: 'unknown-user', bounceClass: 'recipient' }],
  [/^[45]\.2\.2$/, { category: 'mailbox-full', bounceClass: 'recipient' }],
  [/^[45]\.2\.1$/, { category: 'mailbox-disabled', bounceClass: 'recipient' }],
  [/^[45]\.[23]\.4$/, { category: 'message-too-large', bounceClass: 'content' }],
  [/^[45]\.7\.(1|2[3-9])$/, { category: 'policy', bounceClass: 'infrastructure' }],
  [/^[45]\.4\.[0-7]$/, { category: 'dns', bounceClass: 'infrastructure' }],
  [/^[45]\.6\.\d+$/, { category: 'spam', bounceClass: 'content' }],
];

/** Stand-in for shared/bounces/classify.ts `classifyBounce` (see the file comment). */
export const classifyBounce: ClassifyBounce = ({ enhanced }) => {
  for (const [pattern, result] of BY_ENHANCED) if (enhanced && pattern.test(enhanced)) return result;
  return { category: 'other', bounceClass: 'infrastructure' };
};
