/**
 * A tenant's webhook endpoints over the send API: `GET /v1/webhooks`, `POST /v1/webhooks`
 * (the secret is in this answer only), `GET|PATCH|DELETE /v1/webhooks/:id`,
 * `POST /v1/webhooks/:id/rotate` (a new secret, shown once; the old one keeps signing for
 * `webhooks.secretOverlapMs`), `GET /v1/webhooks/:id/deliveries` (the delivery log) and
 * `POST /v1/webhooks/:id/replay {from, to}`. URLs pass the SSRF guard when given. A tenant
 * only ever sees its own endpoints: another tenant's id is a 404.
 */
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import type { PostlineConfig } from '../../shared/config.js';
import type { WebhookEndpoint } from '../../shared/contracts/webhook-endpoint.js';
import type { EndpointBook } from '../../shared/webhooks/endpoint-book.js';
import type { DeliveryLog } from '../../shared/webhooks/delivery-log.js';
import type { ReplayResult } from '../../shared/webhooks/replay.js';
import { WEBHOOK_TYPES } from '../../shared/webhooks/webhook-message.js';
import { SsrfRefused, type SsrfGuard } from '../../shared/http/ssrf-guard.js';
import { RequestRejected } from '../../shared/http/errors.js';
import { ErrorBodySchema } from './email-body-schema.js';
import type { EventPublisher } from '../../shared/events.js';

export interface WebhookRoutesDeps {
  book: EndpointBook;
  guard: SsrfGuard;
  config: PostlineConfig['webhooks'];
  /** The delivery log (`/deliveries`); absent: 404. */
  log?: DeliveryLog;
  /** Replays the tenant's events of a time range to an endpoint; absent: 404. */
  replay?(endpoint: WebhookEndpoint, fromMs: number, toMs: number): Promise<ReplayResult>;
  /** Publishes `enabled` (ops scope webhook) when a PATCH switches on an endpoint the service had disabled. */
  events?: Pick<EventPublisher, 'publish'>;
}

const EventTypes = Type.Array(Type.Union(WEBHOOK_TYPES.map((t) => Type.Literal(t))), { maxItems: 64, uniqueItems: true });
const Description = Type.String({ maxLength: 500 });
const Url = Type.String({ minLength: 1, maxLength: 2048 });
const CreateSchema = Type.Object({ url: Url, description: Type.Optional(Description), eventTypes: Type.Optional(EventTypes), enabled: Type.Optional(Type.Boolean()) }, { additionalProperties: false });
const PatchSchema = Type.Object({ url: Type.Optional(Url), description: Type.Optional(Description), eventTypes: Type.Optional(EventTypes), enabled: Type.Optional(Type.Boolean()) }, { additionalProperties: false, minProperties: 1 });
const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
const ReplaySchema = Type.Object({ from: Type.String({ format: 'date-time' }), to: Type.Optional(Type.String({ format: 'date-time' })) }, { additionalProperties: false });
const LogQuery = Type.Object({ limit: Type.Optional(Type.String({ pattern: '^(1000|[1-9][0-9]{0,2})$' })) }, { additionalProperties: false });

/** What the API shows of an endpoint: never its secrets (only their dates). */
function view(e: WebhookEndpoint): Record<string, unknown> {
  return {
    id: e.id,
    url: e.url,
    description: e.description,
    eventTypes: e.eventTypes,
    enabled: e.enabled,
    disabledReason: e.disabledReason,
    disabledAt: e.disabledAt,
    secrets: e.secrets.map((s) => ({ createdAt: s.createdAt, expiresAt: s.expiresAt })),
    createdAt: e.createdAt,
    updatedAt: e.updatedAt,
  };
}

async function checkedUrl(guard: SsrfGuard, url: string): Promise<string> {
  try {
    return (await guard.checkUrl(url)).href;
  } catch (err) {
    if (err instanceof SsrfRefused) throw new RequestRejected('VALIDATION_FAILED', 'the request is invalid', [{ field: 'url', message: err.message }]);
    throw err;
  }
}

export async function webhookRoutes(v1: FastifyInstance, deps: WebhookRoutesDeps): Promise<void> {
  const { book, guard, config } = deps;
  const errors = { 400: ErrorBodySchema, 401: ErrorBodySchema, 404: ErrorBodySchema, 409: ErrorBodySchema, 503: ErrorBodySchema };
  const found = (tenant: string, id: string): WebhookEndpoint => {
    const e = book.get(tenant, id);
    if (!e) throw new RequestRejected('NOT_FOUND', `no webhook endpoint ${id}`);
    return e;
  };

  v1.get('/v1/webhooks', { schema: { response: errors } }, async (req) => ({ items: book.list(req.tenant).map(view) }));

  v1.post<{ Body: Static<typeof CreateSchema> }>('/v1/webhooks', { schema: { body: CreateSchema, response: errors } }, async (req, reply) => {
    if (book.list(req.tenant).length >= config.maxEndpointsPerTenant) throw new RequestRejected('VALIDATION_FAILED', `at most ${config.maxEndpointsPerTenant} webhook endpoints per tenant`);
    const url = await checkedUrl(guard, req.body.url);
    const created = await book.create(req.tenant, { ...req.body, url });
    req.log.info({ endpoint: created.id, url }, 'webhook endpoint created');
    return reply.code(201).send({ ...view(created), secret: created.secrets[0].secret });
  });

  v1.get<{ Params: Static<typeof IdParams> }>('/v1/webhooks/:id', { schema: { params: IdParams, response: errors } }, async (req) => view(found(req.tenant, req.params.id)));

  v1.patch<{ Params: Static<typeof IdParams>; Body: Static<typeof PatchSchema> }>('/v1/webhooks/:id', { schema: { params: IdParams, body: PatchSchema, response: errors } }, async (req) => {
    const before = found(req.tenant, req.params.id);
    const patch = { ...req.body, ...(req.body.url !== undefined ? { url: await checkedUrl(guard, req.body.url) } : {}) };
    const updated = await book.update(req.tenant, req.params.id, patch);
    if (!updated) throw new RequestRejected('NOT_FOUND', `no webhook endpoint ${req.params.id}`);
    req.log.info({ endpoint: updated.id, enabled: updated.enabled }, 'webhook endpoint updated');
    if (!before.enabled && updated.enabled && before.disabledReason === 'failing') {
      await deps.events?.publish({ type: 'enabled', messageId: '', tenant: req.tenant, reason: 'api', ops: { scope: 'webhook', target: updated.id } });
    }
    return view(updated);
  });

  v1.delete<{ Params: Static<typeof IdParams> }>('/v1/webhooks/:id', { schema: { params: IdParams, response: errors } }, async (req, reply) => {
    if (!(await book.remove(req.tenant, req.params.id))) throw new RequestRejected('NOT_FOUND', `no webhook endpoint ${req.params.id}`);
    deps.log?.forget(req.params.id);
    req.log.info({ endpoint: req.params.id }, 'webhook endpoint deleted');
    return reply.code(204).send();
  });

  v1.post<{ Params: Static<typeof IdParams> }>('/v1/webhooks/:id/rotate', { schema: { params: IdParams, response: errors } }, async (req) => {
    found(req.tenant, req.params.id);
    const rotated = await book.rotate(req.tenant, req.params.id, config.secretOverlapMs);
    if (!rotated) throw new RequestRejected('NOT_FOUND', `no webhook endpoint ${req.params.id}`);
    req.log.info({ endpoint: rotated.id }, 'webhook secret rotated');
    return { ...view(rotated), secret: rotated.secrets[0].secret };
  });

  v1.get<{ Params: Static<typeof IdParams>; Querystring: Static<typeof LogQuery> }>('/v1/webhooks/:id/deliveries', { schema: { params: IdParams, querystring: LogQuery, response: errors } }, async (req) => {
    found(req.tenant, req.params.id);
    if (!deps.log) throw new RequestRejected('NOT_FOUND', 'the delivery log is not available on this API');
    return { items: deps.log.recent(req.params.id, req.query.limit ? Number(req.query.limit) : 100) };
  });

  v1.post<{ Params: Static<typeof IdParams>; Body: Static<typeof ReplaySchema> }>('/v1/webhooks/:id/replay', { schema: { params: IdParams, body: ReplaySchema, response: errors } }, async (req, reply) => {
    const endpoint = found(req.tenant, req.params.id);
    if (!deps.replay) throw new RequestRejected('NOT_FOUND', 'replay is not available on this API');
    const fromMs = Date.parse(req.body.from);
    const toMs = req.body.to ? Date.parse(req.body.to) : Date.now();
    if (toMs < fromMs) throw new RequestRejected('VALIDATION_FAILED', 'the request is invalid', [{ field: 'to', message: 'must not be before from' }]);
    const result = await deps.replay(endpoint, fromMs, toMs);
    req.log.info({ endpoint: endpoint.id, ...result }, 'webhook replay queued');
    return reply.code(202).send(result);
  });
}
