/**
 * `email.dispatch.<priority>` and `email.retry.<priority>.<tier>` — one recipient domain's share of a
 * rendered email: the SMTP envelope and the exact MIME to send. Keyed by recipient domain so
 * one dispatcher replica owns each domain. Retry records add the attempt bookkeeping.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Priority } from '../config.js';
import { contract } from './codec.js';

export const EMAIL_READY_VERSION = 1;

export const EmailReadyForDispatchSchema = Type.Object(
  {
    schemaVersion: Type.Literal(EMAIL_READY_VERSION),
    messageId: Type.String({ minLength: 1 }),
    tenant: Type.String({ minLength: 1 }),
    priority: Priority,
    /** Recipient domain (lower-case, punycode), also the record key. */
    domain: Type.String({ minLength: 1 }),
    pool: Type.Optional(Type.String()),
    envelope: Type.Object(
      {
        from: Type.String(),
        to: Type.Array(Type.String({ minLength: 3 }), { minItems: 1 }),
      },
      { additionalProperties: false },
    ),
    /** The sending (From) domain; the envelope sender is a return path when signed return paths (VERP) are on. */
    fromDomain: Type.Optional(Type.String()),
    /** The mailing list the message belongs to (unsubscribe scope), when it named one. */
    listId: Type.Optional(Type.String()),
    /** The complete RFC 5322 message as rendered; sent byte for byte. */
    raw: Type.String({ minLength: 1 }),
    acceptedAt: Type.String({ format: 'date-time' }),
    tags: Type.Optional(Type.Array(Type.String())),
    /** 1 for the first attempt. */
    attempt: Type.Integer({ minimum: 1 }),
    firstAttemptAt: Type.Optional(Type.String({ format: 'date-time' })),
    /** Not to be sent before this time (retries). */
    notBefore: Type.Optional(Type.String({ format: 'date-time' })),
    lastReason: Type.Optional(Type.String()),
    /**
     * Set when a dead letter was replayed (`postline dead replay`): the maximum age counts from
     * here instead of `acceptedAt`, giving the message a fresh time budget.
     */
    replayedAt: Type.Optional(Type.String({ format: 'date-time' })),
  },
  { additionalProperties: false },
);

export type EmailReadyForDispatch = Static<typeof EmailReadyForDispatchSchema>;
export const EmailReadyForDispatchContract = contract('EmailReadyForDispatch', EMAIL_READY_VERSION, EmailReadyForDispatchSchema);
