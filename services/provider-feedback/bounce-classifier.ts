/** The bounce rule table's classifier (shared/bounces), under the names the provider webhooks use. */
import type { BounceInput, BounceVerdict } from '../../shared/bounces/classify.js';

export { classifyBounce } from '../../shared/bounces/classify.js';
export type { BounceClass, BounceInput } from '../../shared/bounces/classify.js';
export type BounceClassification = BounceVerdict;
export type ClassifyBounce = (input: BounceInput) => BounceVerdict;
