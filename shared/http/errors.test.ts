import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RequestRejected, Unavailable, toHttpError } from './errors.js';
import { ValidationError } from '../errors.js';

const fastifyError = (code: string, statusCode: number) => Object.assign(new Error('x'), { code, statusCode });

test('every error maps to one status and a JSON body naming its code', () => {
  const cases: Array<[string, unknown, number, string]> = [
    ['a bad field', new RequestRejected('VALIDATION_FAILED', 'bad', [{ field: 'to', message: 'x' }]), 400, 'VALIDATION_FAILED'],
    ['a schema failure', new ValidationError([{ path: 'subject', message: 'too long' }]), 400, 'VALIDATION_FAILED'],
    ['no key', new RequestRejected('UNAUTHORIZED', 'no'), 401, 'UNAUTHORIZED'],
    ['in progress', new RequestRejected('IDEMPOTENCY_IN_PROGRESS', 'wait', [], 3), 409, 'IDEMPOTENCY_IN_PROGRESS'],
    ['too large', new RequestRejected('PAYLOAD_TOO_LARGE', 'big'), 413, 'PAYLOAD_TOO_LARGE'],
    ['key reused', new RequestRejected('IDEMPOTENCY_KEY_REUSED', 'no'), 422, 'IDEMPOTENCY_KEY_REUSED'],
    ['broker down', new Unavailable('down'), 503, 'UNAVAILABLE'],
    ['body over the limit', fastifyError('FST_ERR_CTP_BODY_TOO_LARGE', 413), 413, 'PAYLOAD_TOO_LARGE'],
    ['not JSON', fastifyError('FST_ERR_CTP_INVALID_MEDIA_TYPE', 415), 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['empty JSON', fastifyError('FST_ERR_CTP_EMPTY_JSON_BODY', 400), 400, 'INVALID_JSON'],
    ['a %zz in the path', fastifyError('FST_ERR_BAD_URL', 400), 400, 'BAD_REQUEST'],
    ['a path segment over maxParamLength', fastifyError('FST_ERR_MAX_PARAM_LENGTH', 414), 414, 'URI_TOO_LONG'],
    ['headers too large', Object.assign(new Error('Header overflow'), { code: 'HPE_HEADER_OVERFLOW' }), 431, 'HEADERS_TOO_LARGE'],
    ['rate limited', Object.assign(new Error('slow down'), { statusCode: 429 }), 429, 'RATE_LIMITED'],
    ['a bug', new TypeError('secret internals'), 500, 'INTERNAL'],
  ];
  for (const [name, err, status, code] of cases) {
    const h = toHttpError(err);
    assert.equal(h.status, status, name);
    assert.equal(h.body.error.code, code, name);
  }
  assert.deepEqual(toHttpError(new ValidationError([{ path: 'subject', message: 'too long' }])).body.error.fields, [{ field: 'subject', message: 'too long' }]);
  assert.equal(toHttpError(new RequestRejected('IDEMPOTENCY_IN_PROGRESS', 'wait', [], 3)).headers['retry-after'], '3');
  assert.equal(toHttpError(new TypeError('secret internals')).body.error.message, 'internal error', 'a 500 leaks nothing');
});
