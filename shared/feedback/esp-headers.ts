/**
 * Headers that carry the message reference (`X-Postline-Ref`, a `ref` feedback token) to ESPs
 * that do not return original headers in their events. SendGrid's Event Webhook echoes
 * "unique args" set through the `X-SMTPAPI` header, so the token travels as
 * `unique_args.postline_ref` and comes back on every event of that message. Amazon SES returns
 * the original headers itself (with "Include original headers" on), so it needs nothing here.
 */

/** The unique arg that carries the ref token in SendGrid events. */
export const SENDGRID_REF_ARG = 'postline_ref';

/** The header name of SendGrid's SMTP API. */
export const SENDGRID_SMTPAPI_HEADER = 'X-SMTPAPI';

/**
 * Extra headers for one recipient's copy (name → value) for the ESPs in use
 * (`providerFeedback.espHeaders`, e.g. `['sendgrid']`); empty when none needs one.
 */
export function espHeadersFor(refToken: string, providers: readonly string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  if (!/^[a-z2-7]+$/.test(refToken)) throw new TypeError('espHeadersFor: not a feedback token');
  if (providers.includes('sendgrid')) headers[SENDGRID_SMTPAPI_HEADER] = JSON.stringify({ unique_args: { [SENDGRID_REF_ARG]: refToken } });
  return headers;
}
