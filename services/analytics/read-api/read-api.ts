/**
 * The read API as a Fastify plugin: `GET /v1/messages/:id`, `GET /v1/messages` and
 * `GET /v1/stats`, every one scoped to the tenant `authenticate` returns — a tenant never sees
 * another's data, because the tenant is a parameter of every query and never comes from the
 * request's query string. Registered in its own scope (validator and error handler), so it can
 * be mounted on the analytics service's app or on the send API's.
 *
 * Errors use the send API's body and mapping (`shared/http/errors.ts`):
 * `{ error: { code, message, fields: [{ field, message }] } }`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ClickHouseClient } from '@clickhouse/client';
import { Type, type TObject, type TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { RequestRejected, Unavailable, toHttpError } from '../../../shared/http/errors.js';
import { BadParameterError, messageIdParam, searchParams, statsParams, type Query } from './params.js';
import { getMessage, searchMessages, type QueryContext } from './message-queries.js';
import { queryStats } from './stats-queries.js';

export interface ReadApiDeps {
  client: ClickHouseClient;
  /** Database holding the analytics tables. */
  database?: string;
  /** The tenant the request is authenticated as, or null (401). */
  authenticate(request: FastifyRequest): string | null | Promise<string | null>;
  limits?: Partial<ReadApiLimits>;
  /** The clock (tests pin it). */
  now?: () => number;
}

export interface ReadApiLimits {
  queryTimeoutMs: number;
  maxStatsPoints: number;
  /** Widest /v1/stats window. */
  maxStatsSpanMs: number;
  /** Widest /v1/messages window, and its default. */
  maxSearchSpanMs: number;
  defaultSearchSpanMs: number;
}

const DAY = 86_400_000;
export const DEFAULT_LIMITS: ReadApiLimits = {
  queryTimeoutMs: 10_000,
  maxStatsPoints: 1500,
  maxStatsSpanMs: 400 * DAY,
  maxSearchSpanMs: 31 * DAY,
  defaultSearchSpanMs: 7 * DAY,
};

const opt = Type.Optional(Type.String());
const SearchQuery = Type.Object({ recipient: opt, status: opt, tag: opt, from: opt, to: opt, cursor: opt, limit: opt }, { additionalProperties: false });
const StatsQuery = Type.Object({ from: opt, to: opt, interval: opt, groupBy: opt }, { additionalProperties: false });
const MessageParams = Type.Object({ id: Type.String() });

/** Validates with TypeBox; the first bad or unknown query parameter becomes a 400 naming it. */
function compileValidator(schema: TSchema): (data: unknown) => { value?: unknown; error?: Error } {
  const check = TypeCompiler.Compile(schema);
  const known = new Set(Object.keys((schema as TObject).properties ?? {}));
  return (data) => {
    if (check.Check(data)) return { value: data };
    const unknown = Object.keys((data as object) ?? {}).find((k) => !known.has(k));
    if (unknown !== undefined) return { error: new BadParameterError(unknown, `unknown parameter "${unknown}"; known: ${[...known].join(', ')}`) };
    const first = check.Errors(data).First();
    const name = first?.path.split('/').filter(Boolean)[0] ?? 'query';
    return { error: new BadParameterError(name, `${name} may be given once, as text`) };
  };
}

/** What the read API's own failures mean to a client; everything else maps as in every API. */
function asHttpError(err: unknown, request: FastifyRequest): unknown {
  if (err instanceof BadParameterError) return new RequestRejected('VALIDATION_FAILED', err.message, [{ field: err.parameter, message: err.issues[0].message }]);
  const name = (err as Error)?.name;
  if (name === 'TimeoutError' || name === 'AbortError' || (err as { type?: string })?.type === 'TIMEOUT_EXCEEDED') {
    return new Unavailable('the query took too long; narrow the time range', err);
  }
  if (isStoreUnavailable(err)) {
    request.log.warn({ err }, 'analytics store unavailable');
    return new Unavailable('analytics store unavailable; retry later', err);
  }
  return err;
}

function sendError(reply: FastifyReply, err: unknown, request: FastifyRequest): FastifyReply {
  const h = toHttpError(asHttpError(err, request));
  if (h.status >= 500 && h.status !== 503) request.log.error({ err }, 'read API request failed');
  return reply.code(h.status).headers(h.headers).send(h.body);
}

/** ClickHouse error types that mean "not now" rather than "this request is wrong". */
const UNAVAILABLE_TYPES = new Set([
  'TOO_MANY_SIMULTANEOUS_QUERIES', 'MEMORY_LIMIT_EXCEEDED', 'NETWORK_ERROR', 'SOCKET_TIMEOUT', 'ALL_CONNECTION_TRIES_FAILED',
  'UNKNOWN_DATABASE', 'UNKNOWN_TABLE', 'TABLE_IS_READ_ONLY', 'ABORTED',
]);
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE', 'EAI_AGAIN']);

/**
 * Network failures and ClickHouse saying it cannot serve now (overloaded, not migrated yet).
 * Checked by shape, not class: the embedded engine's errors come from a second copy of the
 * client's error class.
 */
export function isStoreUnavailable(err: unknown): boolean {
  const e = err as { code?: unknown; type?: unknown; message?: unknown } | null;
  if (!e) return false;
  if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return true;
  if (typeof e.type === 'string' && UNAVAILABLE_TYPES.has(e.type)) return true;
  return typeof e.message === 'string' && /^Timeout error/.test(e.message);
}

export function registerReadApi(app: FastifyInstance, deps: ReadApiDeps): void {
  const limits: ReadApiLimits = { ...DEFAULT_LIMITS, ...deps.limits };
  const ctx: QueryContext = { client: deps.client, database: deps.database ?? 'postline', timeoutMs: limits.queryTimeoutMs };
  const now = deps.now ?? Date.now;

  app.register(async (scope) => {
    scope.setValidatorCompiler(({ schema }) => compileValidator(schema as TSchema));
    scope.setErrorHandler(async (err, request, reply) => sendError(reply, err, request));
    scope.decorateRequest('readTenant', '');
    scope.addHook('onRequest', async (request, reply) => {
      const tenant = await deps.authenticate(request);
      if (!tenant) {
        reply.header('www-authenticate', 'Bearer');
        throw new RequestRejected('UNAUTHORIZED', 'missing or invalid API key');
      }
      (request as FastifyRequest & { readTenant: string }).readTenant = tenant;
    });
    const tenantOf = (r: FastifyRequest): string => (r as FastifyRequest & { readTenant: string }).readTenant;

    scope.get<{ Params: { id: string } }>('/v1/messages/:id', { schema: { params: MessageParams } }, async (request) => {
      const view = await getMessage(ctx, tenantOf(request), messageIdParam(request.params.id));
      if (!view) throw new RequestRejected('NOT_FOUND', 'no events for this message id');
      return view;
    });

    scope.get('/v1/messages', { schema: { querystring: SearchQuery } }, async (request) => {
      const p = searchParams(request.query as Query, now(), { maxSpanMs: limits.maxSearchSpanMs, defaultSpanMs: limits.defaultSearchSpanMs });
      return searchMessages(ctx, tenantOf(request), p);
    });

    scope.get('/v1/stats', { schema: { querystring: StatsQuery } }, async (request) => {
      const p = statsParams(request.query as Query, now(), { maxPoints: limits.maxStatsPoints, maxSpanMs: limits.maxStatsSpanMs });
      return queryStats(ctx, tenantOf(request), p);
    });
  });
}
