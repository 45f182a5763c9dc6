/**
 * `email.dead` — a record no stage could process, with why. The original record is kept
 * verbatim (value as text when it is UTF-8, else base64) so it can be inspected and replayed.
 */
import { Type, type Static } from '@sinclair/typebox';
import { contract } from './codec.js';

export const DEAD_LETTER_VERSION = 1;

export const DeadLetterSchema = Type.Object(
  {
    schemaVersion: Type.Literal(DEAD_LETTER_VERSION),
    messageId: Type.Optional(Type.String()),
    tenant: Type.Optional(Type.String()),
    reason: Type.String(),
    /** Stable code: VALIDATION_FAILED, EXPIRED, TEMPLATE_NOT_FOUND, ... */
    code: Type.String(),
    stage: Type.String(),
    failedAt: Type.String({ format: 'date-time' }),
    source: Type.Object({
      topic: Type.String(),
      partition: Type.Integer(),
      offset: Type.String(),
      key: Type.Union([Type.String(), Type.Null()]),
      value: Type.Union([Type.String(), Type.Null()]),
      valueEncoding: Type.Union([Type.Literal('utf8'), Type.Literal('base64')]),
      headers: Type.Record(Type.String(), Type.String()),
    }),
  },
  { additionalProperties: false },
);

export type DeadLetter = Static<typeof DeadLetterSchema>;
export const DeadLetterContract = contract('DeadLetter', DEAD_LETTER_VERSION, DeadLetterSchema);
