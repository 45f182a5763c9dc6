/**
 * What a webhook delivery carries, as pure functions: the Standard Webhooks type of a record
 * (`email.<event type>` for email.events, `inbound.received` for email.inbound), whether an
 * endpoint wants it, the JSON body `{ type, timestamp, data }`, and the signature header —
 * one `v1,<base64>` per secret still signing (two during a rotation), computed by the
 * `standardwebhooks` package so receivers verify with the same library.
 */
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { INBOUND_WEBHOOK_TYPE, type WebhookEndpoint, type WebhookSecret } from '../contracts/webhook-endpoint.js';
import { EVENT_TYPES } from '../contracts/email-event.js';

/** Every type an endpoint filter may name. */
export const WEBHOOK_TYPES: readonly string[] = [...EVENT_TYPES.map((t) => `email.${t}`), INBOUND_WEBHOOK_TYPE];

export const webhookTypeOfEvent = (eventType: string): string => `email.${eventType}`;

/** Empty filter: every `email.*` type; `inbound.received` only when named. */
export function wants(endpoint: Pick<WebhookEndpoint, 'eventTypes' | 'enabled'>, type: string): boolean {
  if (!endpoint.enabled) return false;
  if (endpoint.eventTypes.length === 0) return type.startsWith('email.');
  return endpoint.eventTypes.includes(type);
}

/** The request body, as the bytes that are signed and sent. */
export function webhookBody(type: string, timestamp: Date, data: unknown): string {
  return JSON.stringify({ type, timestamp: timestamp.toISOString(), data });
}

/** `whsec_` + base64 of 24 random bytes (Standard Webhooks secrets are 24–64 bytes). */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(24).toString('base64')}`;
}

/** Secrets that sign at `now`: the newest, plus an older one until its `expiresAt`. */
export function signingSecrets(secrets: WebhookSecret[], now: number): WebhookSecret[] {
  return secrets.filter((s) => !s.expiresAt || Date.parse(s.expiresAt) > now);
}

const signers = new Map<string, Webhook>();
function signerFor(secret: string): Webhook {
  let w = signers.get(secret);
  if (!w) {
    // Few endpoints, long-lived: the decoded key is kept; the cache is cleared if it grows odd.
    if (signers.size > 10_000) signers.clear();
    w = new Webhook(secret);
    signers.set(secret, w);
  }
  return w;
}

/** The three Standard Webhooks headers for one delivery. */
export function signedHeaders(secrets: WebhookSecret[], webhookId: string, timestamp: Date, body: string): Record<string, string> {
  const signatures = secrets.map((s) => signerFor(s.secret).sign(webhookId, timestamp, body));
  return {
    'webhook-id': webhookId,
    'webhook-timestamp': String(Math.floor(timestamp.getTime() / 1000)),
    'webhook-signature': signatures.join(' '),
  };
}
