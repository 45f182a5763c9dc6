/** The bounce rule table's classifier, as the provider webhooks use it (shared/bounces). */
export { classifyBounce } from '../../shared/bounces/classify.js';
