/**
 * `email.requested` — what any service produces to ask Postline to send an email (the HTTP
 * API produces exactly this). Keyed by message id. Documented for foreign producers in the README.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Priority } from '../config.js';
import { contract } from './codec.js';
import { TEMPLATE_NAME_PATTERN } from '../templates/template-schema.js';

export const EMAIL_REQUESTED_VERSION = 1;

/** Header values and addresses may not carry CR, LF or NUL (header injection). */
const NO_CONTROL = '^[^\\r\\n\\u0000]*$';
/** A list id: 1–128 characters, none of them a control character (C0 or DEL). */
export const LIST_ID_PATTERN = '^[^\\u0000-\\u001f\\u007f]{1,128}$';
const SafeText = (opts: { maxLength: number; minLength?: number; description?: string }) => Type.String({ pattern: NO_CONTROL, ...opts });

export const Address = Type.Object(
  {
    email: SafeText({ minLength: 3, maxLength: 320, description: 'addr-spec; IDN domains allowed' }),
    name: Type.Optional(SafeText({ maxLength: 200 })),
  },
  { additionalProperties: false },
);
export type Address = Static<typeof Address>;

export const Attachment = Type.Object(
  {
    filename: SafeText({ minLength: 1, maxLength: 255 }),
    content: Type.String({ description: 'base64', contentEncoding: 'base64' }),
    contentType: Type.Optional(SafeText({ maxLength: 255 })),
    contentId: Type.Optional(SafeText({ maxLength: 255 })),
  },
  { additionalProperties: false },
);
export type Attachment = Static<typeof Attachment>;

export const EmailRequestedSchema = Type.Object(
  {
    schemaVersion: Type.Literal(EMAIL_REQUESTED_VERSION),
    messageId: SafeText({ minLength: 1, maxLength: 128 }),
    tenant: SafeText({ minLength: 1, maxLength: 128 }),
    acceptedAt: Type.String({ format: 'date-time', description: 'ISO-8601 time the request was accepted' }),
    priority: Priority,
    from: Address,
    to: Type.Array(Address, { maxItems: 50 }),
    cc: Type.Optional(Type.Array(Address, { maxItems: 50 })),
    bcc: Type.Optional(Type.Array(Address, { maxItems: 50 })),
    replyTo: Type.Optional(Type.Array(Address, { maxItems: 10 })),
    subject: Type.Optional(SafeText({ maxLength: 998 })),
    html: Type.Optional(Type.String()),
    text: Type.Optional(Type.String()),
    template: Type.Optional(
      Type.Object(
        {
          // A name, never a path: the renderer looks it up in the producing tenant's templates only.
          name: Type.String({ pattern: TEMPLATE_NAME_PATTERN }),
          data: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
        },
        { additionalProperties: false },
      ),
    ),
    // additionalProperties: false makes the key pattern binding (a header name with CR/LF fails).
    headers: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z0-9-]{1,76}$' }), SafeText({ maxLength: 998 }), { additionalProperties: false })),
    attachments: Type.Optional(Type.Array(Attachment, { maxItems: 20 })),
    tags: Type.Optional(Type.Array(SafeText({ minLength: 1, maxLength: 64 }), { maxItems: 20 })),
    metadata: Type.Optional(Type.Record(Type.String({ pattern: '^[^\\r\\n\\u0000]{1,64}$' }), Type.String({ maxLength: 1024 }), { additionalProperties: false })),
    pool: Type.Optional(SafeText({ minLength: 1, maxLength: 64 })),
    idempotencyKey: Type.Optional(SafeText({ minLength: 1, maxLength: 255 })),
    /** The mailing list (or stream) the message belongs to: an unsubscribe from it is scoped to it. */
    listId: Type.Optional(Type.String({ minLength: 1, maxLength: 128, pattern: LIST_ID_PATTERN })),
    /** Add List-Unsubscribe to this message (true) or not (false); unset: the tenant's and priority's default (renderer.unsubscribe). */
    unsubscribe: Type.Optional(Type.Boolean()),
    /**
     * Scheduled send: not before this time (RFC 3339, at most 30 days ahead). Ingest parks such a
     * request on `email.scheduled`; the scheduler releases it to its request lane when due.
     */
    sendAt: Type.Optional(Type.String({ format: 'date-time' })),
    /** Open and click tracking for this message; unset: the tenant's default (`tracking` config). */
    track: Type.Optional(Type.Object({ opens: Type.Optional(Type.Boolean()), clicks: Type.Optional(Type.Boolean()) }, { additionalProperties: false })),
  },
  { additionalProperties: false },
);

export type EmailRequested = Static<typeof EmailRequestedSchema>;
export const EmailRequestedContract = contract('EmailRequested', EMAIL_REQUESTED_VERSION, EmailRequestedSchema);

// --- Raw MIME (issue 14, SMTP gateway): a request carrying a complete message instead of its parts. ---

/** The SMTP envelope of a raw request: the recipients (Bcc included: they are only here) and MAIL FROM. */
export const RawEnvelope = Type.Object(
  {
    /** MAIL FROM as given ('' for the null sender); the renderer uses the From header's address when empty. */
    from: Type.String({ maxLength: 320, pattern: NO_CONTROL }),
    to: Type.Array(SafeText({ minLength: 3, maxLength: 320 }), { minItems: 1, maxItems: 50 }),
  },
  { additionalProperties: false },
);

/**
 * The raw-MIME variant of `EmailRequested` (what the SMTP gateway produces; foreign producers may
 * too): the message as the client wrote it, base64 (so 8-bit bytes travel intact), and its SMTP
 * envelope. None of the structured content fields (from, to, subject, html, template, headers,
 * attachments): the renderer does not compose, it checks the From header's domain, strips Bcc
 * and X-Postline-* control headers, adds Message-ID and Date when missing, signs (DKIM) and makes
 * the dispatch records from `envelope.to`. Told apart from a composed request by its `raw` field.
 */
export const RawEmailRequestedSchema = Type.Object(
  {
    schemaVersion: Type.Literal(EMAIL_REQUESTED_VERSION),
    messageId: SafeText({ minLength: 1, maxLength: 128 }),
    tenant: SafeText({ minLength: 1, maxLength: 128 }),
    acceptedAt: Type.String({ format: 'date-time', description: 'ISO-8601 time the request was accepted' }),
    priority: Priority,
    /** The complete RFC 5322 message, base64. */
    raw: Type.String({ minLength: 4, contentEncoding: 'base64', pattern: '^[A-Za-z0-9+/]*={0,2}$' }),
    envelope: RawEnvelope,
    tags: Type.Optional(Type.Array(SafeText({ minLength: 1, maxLength: 64 }), { maxItems: 20 })),
    metadata: Type.Optional(Type.Record(Type.String({ pattern: '^[^\\r\\n\\u0000]{1,64}$' }), Type.String({ maxLength: 1024 }), { additionalProperties: false })),
    pool: Type.Optional(SafeText({ minLength: 1, maxLength: 64 })),
    idempotencyKey: Type.Optional(SafeText({ minLength: 1, maxLength: 255 })),
    listId: Type.Optional(Type.String({ minLength: 1, maxLength: 128, pattern: LIST_ID_PATTERN })),
    unsubscribe: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

export type RawEmailRequested = Static<typeof RawEmailRequestedSchema>;
export const RawEmailRequestedContract = contract('RawEmailRequested', EMAIL_REQUESTED_VERSION, RawEmailRequestedSchema);

/**
 * Whether a record value on a request topic is a raw-MIME request (a top-level `raw` field).
 * Cheap for composed requests: only a value containing `"raw":` is parsed to make sure.
 */
export function isRawRequestValue(value: Buffer | null | undefined): boolean {
  if (!value || value.indexOf('"raw":') < 0) return false;
  try {
    const parsed: unknown = JSON.parse(value.toString('utf8'));
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) && Object.hasOwn(parsed, 'raw');
  } catch {
    return false;
  }
}
// --- end Raw MIME ---
