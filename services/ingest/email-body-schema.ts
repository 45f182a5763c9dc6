/**
 * The HTTP bodies of `POST /v1/emails` and `POST /v1/emails/batch`: their shape (types,
 * lengths, counts, unknown fields). What a shape cannot say — that an address is valid, a
 * header allowed, an attachment small enough — is checked in `normalize-email.ts`.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type { TypeCheck } from '@sinclair/typebox/compiler';
import { Priority } from '../../shared/config.js';
import { TEMPLATE_NAME_PATTERN } from '../../shared/templates/template-schema.js';
import { LIST_ID_PATTERN } from '../../shared/contracts/email-requested.js';

/** Recipients over to, cc and bcc together. */
export const MAX_RECIPIENTS = 50;
export const MAX_BATCH = 500;

export const AddressInputSchema = Type.Union(
  [
    Type.String({ minLength: 3, maxLength: 600, description: '"a@b.c" or "Name <a@b.c>"' }),
    Type.Object({ email: Type.String({ minLength: 3, maxLength: 320 }), name: Type.Optional(Type.String({ maxLength: 200 })) }, { additionalProperties: false }),
  ],
  { description: 'an address: "a@b.c", "Name <a@b.c>" or { "email": "a@b.c", "name": "Name" }' },
);

/** One address or a list of them. */
const AddressList = (maxItems: number) =>
  Type.Union([AddressInputSchema, Type.Array(AddressInputSchema, { maxItems })], { description: `an address or a list of at most ${maxItems} addresses` });

export const EmailBodyProperties = {
  from: AddressInputSchema,
  to: Type.Optional(AddressList(MAX_RECIPIENTS)),
  cc: Type.Optional(AddressList(MAX_RECIPIENTS)),
  bcc: Type.Optional(AddressList(MAX_RECIPIENTS)),
  replyTo: Type.Optional(AddressList(10)),
  subject: Type.Optional(Type.String({ maxLength: 998 })),
  html: Type.Optional(Type.String()),
  text: Type.Optional(Type.String()),
  template: Type.Optional(
    Type.Object(
      {
        name: Type.String({ pattern: TEMPLATE_NAME_PATTERN, description: 'a template name: letters, digits, ".", "_", "-"; at most 128' }),
        data: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
      },
      { additionalProperties: false },
    ),
  ),
  /** X-* headers and a short allow-list (see ALLOWED_HEADERS). */
  headers: Type.Optional(Type.Record(Type.String(), Type.String({ maxLength: 998 }), { maxProperties: 50 })),
  attachments: Type.Optional(
    Type.Array(
      Type.Object(
        {
          filename: Type.String({ minLength: 1, maxLength: 255 }),
          content: Type.String({ description: 'base64' }),
          contentType: Type.Optional(Type.String({ maxLength: 255 })),
          contentId: Type.Optional(Type.String({ maxLength: 255 })),
        },
        { additionalProperties: false },
      ),
      { maxItems: 20 },
    ),
  ),
  tags: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 20 })),
  metadata: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), Type.String({ maxLength: 1024 }), { maxProperties: 50 })),
  priority: Type.Optional(Priority),
  pool: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  /** The mailing list the message belongs to: an unsubscribe from it is scoped to it. */
  listId: Type.Optional(Type.String({ minLength: 1, maxLength: 128, pattern: LIST_ID_PATTERN, description: 'a list name: 1–128 characters, no control characters' })),
  /** Add List-Unsubscribe (true) or not (false); unset: the tenant's and priority's default. */
  unsubscribe: Type.Optional(Type.Boolean()),
  /** Open and click tracking for this message; unset: the tenant's default (`tracking` config). */
  track: Type.Optional(Type.Object({ opens: Type.Optional(Type.Boolean()), clicks: Type.Optional(Type.Boolean()) }, { additionalProperties: false })),
  /** Scheduled send: RFC 3339 with an offset, at most schedule.maxAheadMs ahead; past or within ~1 s: sent now. */
  sendAt: Type.Optional(Type.String({ minLength: 20, maxLength: 40, description: 'an RFC 3339 time with offset, e.g. 2026-12-24T09:00:00+01:00' })),
};

export const EmailBodySchema = Type.Object(EmailBodyProperties, { additionalProperties: false });
export type EmailBody = Static<typeof EmailBodySchema>;

/** A batch item: a message, optionally with its own idempotency key. */
export const BatchItemSchema = Type.Object(
  { ...EmailBodyProperties, idempotencyKey: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })) },
  { additionalProperties: false },
);
export type BatchItem = Static<typeof BatchItemSchema>;

/** Items are checked one by one (an invalid item does not sink the others), so only the envelope is typed here. */
export const BatchBodySchema = Type.Object(
  { messages: Type.Array(Type.Unknown(), { minItems: 1, maxItems: MAX_BATCH }) },
  { additionalProperties: false },
);
export type BatchBody = Static<typeof BatchBodySchema>;

const ErrorSchema = Type.Object({
  code: Type.String(),
  message: Type.String(),
  fields: Type.Optional(Type.Array(Type.Object({ field: Type.String(), message: Type.String() }))),
});
export const ErrorBodySchema = Type.Object({ error: ErrorSchema });

export const AcceptedSchema = Type.Object({ id: Type.String() });

export const BatchResultSchema = Type.Object({
  results: Type.Array(
    Type.Object({
      index: Type.Integer(),
      status: Type.Integer(),
      id: Type.Optional(Type.String()),
      error: Type.Optional(ErrorSchema),
    }),
  ),
});

/** Schema errors as `{ path, message }`, one per field (the first), at most 20. */
export function shapeIssues(check: TypeCheck<TSchema>, value: unknown): Array<{ path: string; message: string }> {
  const byPath = new Map<string, string>();
  for (const e of check.Errors(value)) {
    const path = e.path.split('/').filter(Boolean).join('.');
    if (byPath.has(path)) continue;
    // "Expected union value" says nothing useful; the union's description says what was expected.
    const description = (e.schema as { description?: string }).description;
    byPath.set(path, e.schema.anyOf && description ? `expected ${description}` : e.message);
    if (byPath.size >= 20) break;
  }
  return [...byPath].map(([path, message]) => ({ path, message }));
}
