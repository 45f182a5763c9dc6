/**
 * Every error Postline's HTTP APIs answer with (the send API, the read API) has a stable code;
 * this module is the one place that maps codes (ours and Fastify's) to HTTP statuses and
 * builds the JSON error body `{ error: { code, message, fields: [{ field, message }] } }`.
 * Unexpected errors become a 500 whose body says nothing about internals.
 */
import { PermanentError, PostlineError, TransientError, ValidationError } from '../errors.js';

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
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  REQUEST_TIMEOUT: 408,
  URI_TOO_LONG: 414,
  IDEMPOTENCY_IN_PROGRESS: 409,
  CONFLICT: 409,
  /** An inbound domain another tenant has claimed (`/v1/inbound-routes`). */
  DOMAIN_TAKEN: 409,
  /** DELETE /v1/emails/:id: the message was already handed on for sending (or is done). */
  TOO_LATE: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  IDEMPOTENCY_KEY_REUSED: 422,
  RATE_LIMITED: 429,
  HEADERS_TOO_LARGE: 431,
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

/** Fastify's and Node's own error codes, by what they mean to a client: our code and, when theirs is unhelpful, a message. */
const FOREIGN_CODES: Readonly<Record<string, { code: string; message?: string }>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { code: 'PAYLOAD_TOO_LARGE', message: 'the request body is too large' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { code: 'UNSUPPORTED_MEDIA_TYPE', message: 'the body must be application/json' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { code: 'BAD_REQUEST' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { code: 'INVALID_JSON' },
  FST_ERR_CTP_INVALID_JSON_BODY: { code: 'INVALID_JSON' },
  FST_ERR_BAD_URL: { code: 'BAD_REQUEST', message: 'the request URL is not valid (bad percent-encoding)' },
  FST_ERR_MAX_PARAM_LENGTH: { code: 'URI_TOO_LONG', message: 'a path segment of the URL is too long' },
  // Node's HTTP parser (a 'clientError'): the header section is over --max-http-header-size.
  HPE_HEADER_OVERFLOW: { code: 'HEADERS_TOO_LARGE', message: 'the request headers are too large' },
  ERR_HTTP_REQUEST_TIMEOUT: { code: 'REQUEST_TIMEOUT', message: 'the request was not received in time' },
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
  const mapped = e?.code ? FOREIGN_CODES[e.code] : undefined;
  if (mapped) return build(mapped.code, mapped.message ?? e.message);
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
