/**
 * `email.cancellations` — messages cancelled by `DELETE /v1/emails/:id` (compacted, keyed by
 * message id, aged out after the longest retry window). Every scheduler replica reads it whole:
 * a scheduled request or a retry record whose message is on it is dropped, with a `cancelled`
 * event, when the scheduler would otherwise release it or move it back to dispatch.
 */
import { Type, type Static } from '@sinclair/typebox';
import { contract } from './codec.js';

export const CANCELLATION_VERSION = 1;

export const CancellationSchema = Type.Object(
  {
    schemaVersion: Type.Literal(CANCELLATION_VERSION),
    messageId: Type.String({ minLength: 1, maxLength: 128 }),
    /** The tenant that cancelled: a record of another tenant's message is ignored. */
    tenant: Type.String({ minLength: 1, maxLength: 128 }),
    /** When the cancellation was asked for (ISO-8601). */
    at: Type.String({ format: 'date-time' }),
  },
  { additionalProperties: false },
);

export type Cancellation = Static<typeof CancellationSchema>;
export const CancellationContract = contract('Cancellation', CANCELLATION_VERSION, CancellationSchema);
