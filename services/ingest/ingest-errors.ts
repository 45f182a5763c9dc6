/**
 * Every error the send API answers with has a stable code; this module is the one place
 * that maps codes (ours and Fastify's) to HTTP statuses and builds the JSON error body
 * `{ error: { code, message, fields: [{ field, message }] } }`. Unexpected errors become a
 * 500 whose body says nothing about internals.
 */
import { PermanentError, PostlineError, TransientError, ValidationError } from '../../shared/errors.js';

export interface FieldIssue {
  field: string;
  message: string;
}

export interface ErrorBody {
  error: { code: string; message: string; fields?: FieldIssue[] };
}

export const STATUS_BY_CODE: Readonly<Record<string, number>> = {
  VALIDATION_FAILED: 400,
  INVALID_JSON: 400,
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  NOT_FOUND: 404,
  IDEMPOTENCY_IN_PROGRESS: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  IDEMPOTENCY_KEY_REUSED: 422,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  UNAVAILABLE: 503,
};

/** A request the API refuses: bad input, too large, an idempotency conflict, no credentials. */
export class RequestRejected extends PermanentError {
  constructor(
    code: keyof typeof STATUS_BY_CODE,
    message: string,
    readonly fields: FieldIssue[] = [],
    readonly retryAfterSeconds?: number,
  ) {
    super(code, message);
  }
}

/** The broker did not acknowledge in time: nothing was promised, the client should retry. */
export class Unavailable extends TransientError {
  constructor(message: string, cause?: unknown) {
    super('UNAVAILABLE', message, { cause });
  }
}

/** Fastify's own error codes, by what they mean to a client. */
const FASTIFY_CODES: Readonly<Record<string, string>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'INVALID_JSON',
  FST_ERR_CTP_INVALID_JSON_BODY: 'INVALID_JSON',
};

const FASTIFY_MESSAGES: Readonly<Record<string, string>> = {
  PAYLOAD_TOO_LARGE: 'the request body is too large',
  UNSUPPORTED_MEDIA_TYPE: 'the body must be application/json',
};

export interface HttpError {
  status: number;
  body: ErrorBody;
  headers: Record<string, string>;
}

/** Maps any error to the status, body and headers the API answers with. */
export function toHttpError(err: unknown): HttpError {
  const e = err as Error & { code?: string; statusCode?: number; issues?: ValidationError['issues'] };
  if (e instanceof RequestRejected) {
    const headers: Record<string, string> = e.retryAfterSeconds !== undefined ? { 'retry-after': String(e.retryAfterSeconds) } : {};
    return build(e.code, e.message, e.fields, headers);
  }
  // A ValidationError from the body schema keeps its code through Fastify's validation step.
  if (e instanceof ValidationError || Array.isArray(e?.issues)) {
    const fields = (e.issues ?? []).map((i) => ({ field: i.path || '(body)', message: i.message }));
    return build('VALIDATION_FAILED', 'the request is invalid', fields);
  }
  if (e instanceof PostlineError && e.code in STATUS_BY_CODE) return build(e.code, e.message);
  const mapped = e?.code ? FASTIFY_CODES[e.code] : undefined;
  if (mapped) return build(mapped, FASTIFY_MESSAGES[mapped] ?? e.message);
  const status = (err as { statusCode?: number } | undefined)?.statusCode;
  if (status === 429) return build('RATE_LIMITED', e.message);
  if (e instanceof SyntaxError && status === 400) return build('INVALID_JSON', `the body is not valid JSON: ${e.message}`);
  if (status !== undefined && status >= 400 && status < 500) {
    return { status, body: { error: { code: 'BAD_REQUEST', message: e.message } }, headers: {} };
  }
  return build('INTERNAL', 'internal error');
}

function build(code: string, message: string, fields: FieldIssue[] = [], headers: Record<string, string> = {}): HttpError {
  const body: ErrorBody = { error: { code, message, ...(fields.length > 0 ? { fields } : {}) } };
  return { status: STATUS_BY_CODE[code] ?? 500, body, headers };
}
