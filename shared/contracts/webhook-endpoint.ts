/**
 * `email.webhooks` — a customer's webhook endpoint (compacted, keyed by endpoint id; a
 * tombstone deletes it). Written by the `/v1/webhooks` API (ingest) and, when an endpoint has
 * failed for too long, by the webhooks service (enabled false). Secrets are Standard Webhooks
 * `whsec_…` keys; during a rotation there are two: the newest first, the older one with the
 * time it stops signing (`expiresAt`).
 */
import { Type, type Static } from '@sinclair/typebox';
import { contract } from './codec.js';

export const WEBHOOK_ENDPOINT_VERSION = 1;

/** Webhook types an endpoint may name in its filter besides `email.<event type>`. */
export const INBOUND_WEBHOOK_TYPE = 'inbound.received';

export const WebhookSecretSchema = Type.Object(
  {
    /** `whsec_` + base64 of 24 random bytes. */
    secret: Type.String({ pattern: '^whsec_[A-Za-z0-9+/=]+$' }),
    createdAt: Type.String({ format: 'date-time' }),
    /** When this secret stops signing (set on the older secret by a rotation). */
    expiresAt: Type.Optional(Type.String({ format: 'date-time' })),
  },
  { additionalProperties: false },
);

export const WebhookEndpointSchema = Type.Object(
  {
    schemaVersion: Type.Literal(WEBHOOK_ENDPOINT_VERSION),
    id: Type.String({ minLength: 1, maxLength: 64 }),
    tenant: Type.String({ minLength: 1, maxLength: 128 }),
    url: Type.String({ minLength: 1, maxLength: 2048 }),
    description: Type.Optional(Type.String({ maxLength: 500 })),
    /** Webhook types delivered (`email.sent`, `inbound.received`, …); empty: every `email.*` type. */
    eventTypes: Type.Array(Type.String(), { maxItems: 64 }),
    enabled: Type.Boolean(),
    /** Why it is disabled (`failing` when the service switched it off, `api` when the tenant did). */
    disabledReason: Type.Optional(Type.String()),
    disabledAt: Type.Optional(Type.String({ format: 'date-time' })),
    secrets: Type.Array(WebhookSecretSchema, { minItems: 1, maxItems: 2 }),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
  },
  { additionalProperties: false },
);

export type WebhookEndpoint = Static<typeof WebhookEndpointSchema>;
export type WebhookSecret = Static<typeof WebhookSecretSchema>;
export const WebhookEndpointContract = contract('WebhookEndpoint', WEBHOOK_ENDPOINT_VERSION, WebhookEndpointSchema);
