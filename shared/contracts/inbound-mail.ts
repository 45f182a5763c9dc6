/**
 * `email.inbound` — a mail received on a tenant's inbound domain (inbound routes), parsed, on
 * its way to the tenant's webhooks. Keyed by `id`. The inbound service produces it (and a
 * `received` event) before it answers 250; the webhooks service delivers it to the tenant's
 * endpoints subscribed to `inbound` as JSON, signed like every webhook. Bodies and attachments
 * are cut to the configured limits (`truncated` says so); an attachment over its limit keeps its
 * metadata without `content`.
 */
import { Type, type Static } from '@sinclair/typebox';
import { contract } from './codec.js';

export const INBOUND_MAIL_VERSION = 1;

const Address = Type.Object({ address: Type.String(), name: Type.Optional(Type.String()) }, { additionalProperties: false });

export const InboundMailSchema = Type.Object(
  {
    schemaVersion: Type.Literal(INBOUND_MAIL_VERSION),
    /** Postline's id of this inbound mail (also the `received` event's messageId). */
    id: Type.String({ minLength: 1, maxLength: 128 }),
    tenant: Type.String({ minLength: 1, maxLength: 128 }),
    /** The inbound domain (lower-case) whose route matched. */
    domain: Type.String({ minLength: 1 }),
    receivedAt: Type.String({ format: 'date-time' }),
    /** The SMTP envelope: MAIL FROM ('' for a null sender) and the RCPT TO addresses of this route. */
    envelope: Type.Object({ from: Type.String(), to: Type.Array(Type.String(), { minItems: 1 }) }, { additionalProperties: false }),
    /** The connecting client: IP address and the name it gave in HELO/EHLO. */
    remote: Type.Object({ ip: Type.String(), helo: Type.Optional(Type.String()) }, { additionalProperties: false }),
    /** The message's own Message-ID, when it had one. */
    messageId: Type.Optional(Type.String()),
    subject: Type.Optional(Type.String()),
    from: Type.Optional(Type.Array(Address)),
    to: Type.Optional(Type.Array(Address)),
    cc: Type.Optional(Type.Array(Address)),
    replyTo: Type.Optional(Type.Array(Address)),
    inReplyTo: Type.Optional(Type.String()),
    references: Type.Optional(Type.Array(Type.String())),
    date: Type.Optional(Type.String()),
    /** Every header line in order, unfolded: [name, value]. */
    headers: Type.Array(Type.Tuple([Type.String(), Type.String()])),
    text: Type.Optional(Type.String()),
    html: Type.Optional(Type.String()),
    attachments: Type.Array(
      Type.Object(
        {
          filename: Type.Optional(Type.String()),
          contentType: Type.String(),
          size: Type.Integer({ minimum: 0 }),
          contentId: Type.Optional(Type.String()),
          /** base64; absent when the attachment was over the limit. */
          content: Type.Optional(Type.String()),
        },
        { additionalProperties: false },
      ),
    ),
    /** SPF, DKIM and DMARC verdicts for the mail, when checked (`pass`, `fail`, `none`, …). */
    auth: Type.Optional(
      Type.Object({ spf: Type.Optional(Type.String()), dkim: Type.Optional(Type.String()), dmarc: Type.Optional(Type.String()) }, { additionalProperties: false }),
    ),
    /** Size of the raw message in bytes, as received. */
    size: Type.Integer({ minimum: 0 }),
    /** What was cut to fit the limits. */
    truncated: Type.Optional(Type.Object({ text: Type.Optional(Type.Boolean()), html: Type.Optional(Type.Boolean()), attachments: Type.Optional(Type.Boolean()) }, { additionalProperties: false })),
  },
  { additionalProperties: false },
);

export type InboundMail = Static<typeof InboundMailSchema>;
export const InboundMailContract = contract('InboundMail', INBOUND_MAIL_VERSION, InboundMailSchema);
