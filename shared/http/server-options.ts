/**
 * What every public HTTP API (the send API, the read API) is built with, so that every answer
 * — including those Fastify and Node produce before a route runs — uses the JSON error body of
 * `shared/http/errors.ts`:
 *
 * - `maxParamLength`: a path segment may be a 128-character template name or message id even
 *   percent-encoded (three bytes a character), so Fastify's default of 100 would answer 414;
 * - `frameworkErrors`: a bad percent-encoding (`%zz`) or an over-long segment;
 * - `clientErrorHandler`: what Node's parser refuses (headers over the size limit: 431; a
 *   malformed request: 400; a request not received in time: 408);
 * - `rejectRepeatedHeaders`: an `onRequest` hook refusing a request that repeats a header whose
 *   meaning would otherwise be Node's guess (it keeps the first Authorization and joins two
 *   Idempotency-Keys with ", ").
 */
import http from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify';
import { RequestRejected, toHttpError } from './errors.js';

/** Longest path parameter: a 128-character id, every character percent-encoded, with room to spare. */
export const MAX_PARAM_LENGTH = 512;

/** Headers that must appear at most once. */
export const SINGLE_HEADERS = ['authorization', 'idempotency-key'] as const;

function sendHttpError(err: unknown, reply: FastifyReply): void {
  const h = toHttpError(err);
  void reply.code(h.status).headers(h.headers).send(h.body);
}

/** Answers what Node's HTTP parser refused with the JSON error body, then closes the connection. */
export function clientErrorHandler(err: Error & { code?: string }, socket: Duplex): void {
  // A reset connection has nobody left to answer.
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const known = toHttpError(err);
  const h = known.status === 500 ? toHttpError(new RequestRejected('BAD_REQUEST', 'the request could not be parsed')) : known;
  const body = JSON.stringify(h.body);
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${h.status} ${http.STATUS_CODES[h.status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${body}`);
  }
  socket.destroy(err);
}

/** Fastify options every public API shares (merge into the app's own). */
export function apiServerOptions(): Pick<FastifyServerOptions, 'routerOptions' | 'frameworkErrors' | 'clientErrorHandler'> {
  return {
    // Under routerOptions: Fastify 5 deprecates the top-level option (FSTDEP022, a warning per server).
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    frameworkErrors: (err, _req, reply) => sendHttpError(err, reply),
    clientErrorHandler,
  };
}

/** An `onRequest` hook: a repeated Authorization or Idempotency-Key header is a 400 naming it. */
export async function rejectRepeatedHeaders(req: FastifyRequest): Promise<void> {
  const counts = new Map<string, number>();
  const raw = req.raw.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    if ((SINGLE_HEADERS as readonly string[]).includes(name)) counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  const repeated = [...counts].filter(([, n]) => n > 1).map(([name]) => name);
  if (repeated.length === 0) return;
  const label = (name: string): string => name.replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase());
  throw new RequestRejected('VALIDATION_FAILED', 'the request is invalid', repeated.map((name) => ({ field: label(name), message: 'given more than once' })));
}
