/**
 * The tenant's suppression list over the send API: `GET /v1/suppressions` (search by address
 * prefix, reason, list; paged with an opaque cursor), `GET /v1/suppressions.csv` (export),
 * `POST /v1/suppressions` (one entry, or `{ items: [...] }` up to 10,000), `DELETE
 * /v1/suppressions/:address?list=`. A tenant only ever sees and changes its own entries. The
 * dispatcher's index reads every change from the topic, so it applies to the next message.
 */
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { stringify } from 'csv-stringify';
import { SUPPRESSION_REASONS, type Suppression } from '../../shared/contracts/suppression.js';
import type { SuppressionBook, SuppressionInput } from '../../shared/suppressions/suppression-book.js';
import { MAX_SUPPRESSION_ITEMS, decodeCursor } from '../../shared/suppressions/suppression-book.js';
import { RequestRejected } from '../../shared/http/errors.js';
import { ValidationError } from '../../shared/errors.js';
import { hasControlChars, normalizeMailbox } from './addresses.js';
import { ErrorBodySchema, shapeIssues } from './email-body-schema.js';

const NoControl = '^[^\\u0000-\\u001f\\u007f]+$';
const Reason = Type.Union(SUPPRESSION_REASONS.map((r) => Type.Literal(r)), { description: SUPPRESSION_REASONS.join(' | ') });
const List = Type.String({ minLength: 1, maxLength: 128, pattern: NoControl });

const ItemSchema = Type.Object(
  {
    address: Type.String({ minLength: 1, maxLength: 320 }),
    list: Type.Optional(List),
    reason: Type.Optional(Reason),
    note: Type.Optional(Type.String({ maxLength: 500 })),
    expiresAt: Type.Optional(Type.String({ format: 'date-time' })),
  },
  { additionalProperties: false },
);
const BulkSchema = Type.Object({ items: Type.Array(ItemSchema, { minItems: 1, maxItems: MAX_SUPPRESSION_ITEMS }) }, { additionalProperties: false });
type Item = Static<typeof ItemSchema>;
const itemCheck = TypeCompiler.Compile(ItemSchema);
const bulkCheck = TypeCompiler.Compile(BulkSchema);

const QuerySchema = Type.Object(
  {
    address: Type.Optional(Type.String({ maxLength: 320 })),
    reason: Type.Optional(Reason),
    list: Type.Optional(Type.String({ maxLength: 128 })),
    cursor: Type.Optional(Type.String({ maxLength: 1024 })),
    /** 1–1000, default 100 (a query string is text: checked by pattern, then read as a number). */
    limit: Type.Optional(Type.String({ pattern: '^(1000|[1-9][0-9]{0,2})$', description: 'an integer from 1 to 1000' })),
  },
  { additionalProperties: false },
);

export const CSV_COLUMNS = ['address', 'list', 'reason', 'category', 'note', 'createdAt', 'expiresAt', 'messageId', 'via'] as const;

function view(s: Suppression): Record<string, unknown> {
  return { address: s.address, list: s.list, reason: s.reason, category: s.category, note: s.note, createdAt: s.createdAt, expiresAt: s.expiresAt, cause: s.cause };
}

/** The address as stored (lower-cased, IDNA domain), or a 400 naming `field`. */
function addressOf(raw: string, field: string): string {
  const mailbox = hasControlChars(raw) ? { message: 'must not contain control characters' } : normalizeMailbox(raw.trim());
  if (typeof mailbox !== 'string') throw new RequestRejected('VALIDATION_FAILED', 'the request is invalid', [{ field, message: mailbox.message }]);
  return mailbox.toLowerCase();
}

function inputOf(item: Item, field: string): SuppressionInput {
  return { ...item, address: addressOf(item.address, `${field}address`) };
}

export async function suppressionRoutes(v1: FastifyInstance, book: SuppressionBook): Promise<void> {
  const errors = { 400: ErrorBodySchema, 401: ErrorBodySchema, 404: ErrorBodySchema, 413: ErrorBodySchema, 415: ErrorBodySchema, 503: ErrorBodySchema };

  v1.get<{ Querystring: Static<typeof QuerySchema> }>('/v1/suppressions', { schema: { querystring: QuerySchema, response: errors } }, async (req) => {
    const { cursor, limit, ...q } = req.query;
    if (cursor !== undefined && decodeCursor(cursor) === undefined) throw new RequestRejected('VALIDATION_FAILED', 'the request is invalid', [{ field: 'cursor', message: 'not a cursor this API gave out' }]);
    const page = book.search(req.tenant, { ...q, limit: limit ? Number(limit) : 100, ...(cursor ? { cursor } : {}) });
    return { items: page.items.map(view), ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) };
  });

  v1.get('/v1/suppressions.csv', async (req, reply) => {
    const rows = Readable.from(
      (function* (all: Iterable<Suppression>) {
        for (const s of all) yield [s.address, s.list ?? '', s.reason, s.category ?? '', s.note ?? '', s.createdAt, s.expiresAt ?? '', s.cause?.messageId ?? '', s.cause?.via ?? ''];
      })(book.all(req.tenant)),
    );
    return reply.type('text/csv; charset=utf-8').header('content-disposition', 'attachment; filename="suppressions.csv"').send(rows.pipe(stringify({ header: true, columns: [...CSV_COLUMNS] })));
  });

  // A bulk import of 10,000 entries with notes is a few MB.
  v1.post<{ Body: unknown }>('/v1/suppressions', { bodyLimit: 8 * 1024 * 1024, schema: { response: errors } }, async (req, reply) => {
    const body = req.body;
    let inputs: SuppressionInput[];
    if (body && typeof body === 'object' && 'items' in body) {
      if (!bulkCheck.Check(body)) throw new ValidationError(shapeIssues(bulkCheck, body));
      inputs = body.items.map((item, i) => inputOf(item, `items.${i}.`));
    } else {
      if (!itemCheck.Check(body)) throw new ValidationError(shapeIssues(itemCheck, body));
      inputs = [inputOf(body, '')];
    }
    const { stored, kept } = await book.add(req.tenant, inputs);
    req.log.info({ added: stored.length, kept: kept.length, reasons: [...new Set(stored.map((s) => s.reason))] }, 'suppressions added');
    return reply.code(stored.length > 0 ? 201 : 200).send({ added: stored.length, kept: kept.length, items: stored.map(view), ...(kept.length ? { existing: kept.map(view) } : {}) });
  });

  v1.delete<{ Params: { address: string }; Querystring: { list?: string } }>(
    '/v1/suppressions/:address',
    { schema: { params: Type.Object({ address: Type.String({ minLength: 1, maxLength: 320 }) }), querystring: Type.Object({ list: Type.Optional(List) }), response: errors } },
    async (req, reply) => {
      const address = addressOf(req.params.address, 'address');
      if (!(await book.remove(req.tenant, address, req.query.list))) throw new RequestRejected('NOT_FOUND', `no suppression of ${address}${req.query.list ? ` for list ${req.query.list}` : ''}`);
      req.log.info({ list: req.query.list }, 'suppression removed');
      return reply.code(204).send();
    },
  );
}
