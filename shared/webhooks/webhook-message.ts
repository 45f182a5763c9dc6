/**
 * What a webhook delivery carries, as pure functions: the Standard Webhooks type of a record
 * (`email.<event type>` for email.events, `inbound.received` for email.inbound), whether an
 * endpoint wants it, the JSON body `{ type, timestamp, data }`, and the signature header —
 * one `v1,<base64>` per secret still signing (two during a rotation).
 *
 * The signature is the Standard Webhooks scheme exactly as the `standardwebhooks` package
 * computes it (HMAC-SHA256 over `<id>.<timestamp>.<body>` with the base64-decoded secret,
 * base64), but with node:crypto's native HMAC: the package's pure-JavaScript SHA-256 costs
 * ~54 µs per signature against ~15 µs, a third of a core at 5,000 deliveries/s. The tests
 * check every signature against the package's own `sign` and `verify`.
 */
import { createHmac, randomBytes } from 'node:crypto';
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

/**
 * The same body around `dataJson`, JSON text that was already validated (a record's value as
 * read from Kafka): no second serialization of what was just parsed. Equal to `webhookBody`
 * when `dataJson` is `JSON.stringify(data)`, which is how every Postline producer encodes.
 */
export function webhookBodyFromJson(type: string, timestamp: Date, dataJson: string): string {
  return `{"type":${JSON.stringify(type)},"timestamp":"${timestamp.toISOString()}","data":${dataJson}}`;
}

/** `whsec_` + base64 of 24 random bytes (Standard Webhooks secrets are 24–64 bytes). */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(24).toString('base64')}`;
}

/** Secrets that sign at `now`: the newest, plus an older one until its `expiresAt`. */
export function signingSecrets(secrets: WebhookSecret[], now: number): WebhookSecret[] {
  return secrets.filter((s) => !s.expiresAt || Date.parse(s.expiresAt) > now);
}

const keys = new Map<string, Buffer>();
function keyOf(secret: string): Buffer {
  let k = keys.get(secret);
  if (!k) {
    // Few endpoints, long-lived: the decoded key is kept; the cache is cleared if it grows odd.
    if (keys.size > 10_000) keys.clear();
    k = Buffer.from(secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret, 'base64');
    keys.set(secret, k);
  }
  return k;
}

/** One `v1,<base64>` signature (what `new Webhook(secret).sign(id, timestamp, body)` returns). */
export function sign(secret: string, webhookId: string, timestampSeconds: number, body: string): string {
  // One update of the whole signed content: each update() is a call into C++ with its own string conversion.
  return `v1,${createHmac('sha256', keyOf(secret)).update(`${webhookId}.${timestampSeconds}.${body}`).digest('base64')}`;
}

/** The three Standard Webhooks headers for one delivery. */
export function signedHeaders(secrets: WebhookSecret[], webhookId: string, timestamp: Date, body: string): Record<string, string> {
  const seconds = Math.floor(timestamp.getTime() / 1000);
  const signatures = secrets.map((s) => sign(s.secret, webhookId, seconds, body));
  return {
    'webhook-id': webhookId,
    'webhook-timestamp': String(seconds),
    'webhook-signature': signatures.join(' '),
  };
}
