/**
 * Dead letters over the API, for the authenticated tenant's own messages only:
 *
 * - `GET /v1/dead-letters?since=&code=&messageId=&limit=` — summaries, newest first (no content);
 * - `POST /v1/dead-letters/replay` with `{ "messageIds": [...] }` or `{ "since": "<ISO time>" }`
 *   — replays them (see `replay-record.ts`) and answers what went where.
 *
 * A Fastify plugin for the ingest app: mount it inside the authenticated `/v1` scope, where
 * `req.tenant` is set. Errors are PostlineErrors with codes the app's error handler maps
 * (VALIDATION_FAILED → 400, NOT_FOUND → 404).
 */
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { PermanentError } from '../errors.js';
import { replayDeadLetters, type DeadLetterEntry, type DeadLetterSummary, type LetterFilter, type ProduceFn } from './dead-letters.js';

export interface DeadLetterRoutesDeps {
  /** The tenant's dead letters (a DeadLetterIndex). */
  index: { list(tenant: string, filter?: Omit<LetterFilter, 'tenant'>, limit?: number): DeadLetterSummary[] };
  /** Reads full dead letters by id (`fetchDeadLetters`). */
  fetch(ids: string[]): Promise<DeadLetterEntry[]>;
  produce: ProduceFn;
  now?: () => Date;
}

/** Most dead letters one replay request may cover. */
export const MAX_REPLAY = 500;

const ListQuery = Type.Object(
  {
    since: Type.Optional(Type.String({ format: 'date-time' })),
    code: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    messageId: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    // A string: query values arrive as text and the API's validator does not coerce.
    limit: Type.Optional(Type.String({ pattern: '^(?:[1-9][0-9]{0,2}|1000)$' })),
  },
  { additionalProperties: false },
);

const ReplayBody = Type.Union([
  Type.Object({ messageIds: Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { minItems: 1, maxItems: 100 }) }, { additionalProperties: false }),
  Type.Object({ since: Type.String({ format: 'date-time' }) }, { additionalProperties: false }),
]);

type ListQuery = Static<typeof ListQuery>;
type ReplayBody = Static<typeof ReplayBody>;

export async function registerDeadLetterRoutes(app: FastifyInstance, deps: DeadLetterRoutesDeps): Promise<void> {
  const now = deps.now ?? (() => new Date());

  app.get<{ Querystring: ListQuery }>('/v1/dead-letters', { schema: { querystring: ListQuery } }, async (req) => {
    const q = req.query;
    const filter: Omit<LetterFilter, 'tenant'> = {
      ...(q.since ? { since: Date.parse(q.since) } : {}),
      ...(q.code ? { code: q.code } : {}),
      ...(q.messageId ? { messageIds: [q.messageId] } : {}),
    };
    return { deadLetters: deps.index.list(req.tenant, filter, q.limit ? Number(q.limit) : 100) };
  });

  app.post<{ Body: ReplayBody }>('/v1/dead-letters/replay', { schema: { body: ReplayBody } }, async (req) => {
    const filter: Omit<LetterFilter, 'tenant'> = 'messageIds' in req.body ? { messageIds: req.body.messageIds } : { since: Date.parse(req.body.since) };
    const chosen = deps.index.list(req.tenant, filter, MAX_REPLAY + 1);
    if (chosen.length === 0) throw new PermanentError('NOT_FOUND', 'no dead letters of yours match');
    if (chosen.length > MAX_REPLAY) throw new PermanentError('VALIDATION_FAILED', `more than ${MAX_REPLAY} dead letters match; narrow the request (a later "since")`);
    // Read back in full; the tenant is checked again on the letters themselves.
    const entries = (await deps.fetch(chosen.map((s) => s.id))).filter((e) => e.letter.tenant === req.tenant);
    const replayed = await replayDeadLetters(deps.produce, entries, now());
    req.log.info({ replayed: replayed.filter((r) => !r.error).length, failed: replayed.filter((r) => r.error).length }, 'dead letters replayed');
    return { replayed };
  });
}
