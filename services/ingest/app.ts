/**
 * The send API as a Fastify app: `POST /v1/emails`, `POST /v1/emails/batch`, and `/healthz`
 * and `/readyz` on the same port (probes need no second port). `/metrics` is not on this
 * public port unless `ingest.metricsOnApiPort` says so: it is served without authentication,
 * so by default only the ops server (`ops.port`, started by `main.ts`) serves it.
 * `buildApp` never listens — `main.ts` does, tests call `inject`. Routes are schema-first
 * (TypeBox, validated by TypeBox's own compiler so unknown fields are refused rather than
 * silently dropped, and every bad field is named); every error — Fastify's and Node's own
 * included (`apiServerOptions`) — goes through one mapping from code to status and body.
 */
import type { EventEmitter } from 'node:events';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import httpProxy from '@fastify/http-proxy';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { TSchema } from '@sinclair/typebox';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { PostlineConfig } from '../../shared/config.js';
import { ValidationError } from '../../shared/errors.js';
import { registerOpsRoutes, type ReadinessCheck } from '../../shared/ops-server.js';
import { bearerToken, type ApiKeyStore } from '../../shared/http/api-keys.js';
import { checkIdempotencyKey, type Acceptor } from './acceptor.js';
import { shapeIssues, AcceptedSchema, BatchBodySchema, BatchResultSchema, EmailBodySchema, ErrorBodySchema, type BatchBody, type EmailBody } from './email-body-schema.js';
import { RequestRejected, toHttpError } from '../../shared/http/errors.js';
import { apiServerOptions, rejectRepeatedHeaders } from '../../shared/http/server-options.js';
import { templateRoutes } from './template-routes.js';
import { suppressionRoutes } from './suppression-routes.js';
import { adminRoutes, type AdminRoutesDeps } from './admin-routes.js';
import { requiredScope } from '../../shared/admin/route-scopes.js';
import type { SuppressionBook } from '../../shared/suppressions/suppression-book.js';
import { registerDeadLetterRoutes, type DeadLetterRoutesDeps } from '../../shared/dead-letters/dead-letter-routes.js';
import type { TemplateRepository } from '../../shared/templates/template-repository.js';
import { unsubscribeRoutes, type UnsubscribeRoutesDeps } from './unsubscribe-routes.js';
import { inboundRouteRoutes, type InboundRouteRoutesDeps } from './inbound-route-routes.js';
import { cancelRoutes, type CancelRoutesDeps } from './cancel-routes.js';
import { webhookRoutes, type WebhookRoutesDeps } from './webhook-routes.js';

import { registerProviderFeedbackRoutes, type ProviderFeedbackDeps } from '../provider-feedback/provider-feedback-routes.js';
import { registerConsole, type ConsoleDeps } from '../console/console-app.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated tenant (set on /v1 routes). */
    tenant: string;
  }
}

export interface IngestAppDeps {
  acceptor: Acceptor;
  apiKeys: ApiKeyStore;
  config: PostlineConfig['ingest'];
  logger: Logger;
  registry: Registry;
  readiness: Record<string, ReadinessCheck>;
  /** Per-tenant templates (`/v1/templates`); the routes are absent without it. */
  templates?: TemplateRepository;
  /** The tenant's suppression list (`/v1/suppressions`); the routes are absent without it. */
  suppressions?: SuppressionBook;
  /** The tenant's dead letters (`/v1/dead-letters`, replay); absent without it. */
  deadLetters?: DeadLetterRoutesDeps;
  /** The one-click unsubscribe endpoint `/u/<token>` (no API key); absent without feedback keys. */
  unsubscribe?: UnsubscribeRoutesDeps;
  /** Receives 'response' ({ route, method, status, seconds }) for every answered request. */
  observer?: EventEmitter;
  /** Provider webhooks (`POST /feedback/ses`, `/feedback/sendgrid`; public, signed); absent without it. */
  providerFeedback?: ProviderFeedbackDeps;
  /** Administration (`/v1/admin/...`: tenants, keys, sender domains); absent without it. */
  admin?: AdminRoutesDeps;
  /** The tenant's inbound routes (`/v1/inbound-routes`); the routes are absent without it. */
  inboundRoutes?: InboundRouteRoutesDeps;
  /** `DELETE /v1/emails/:id` (forwarded to the scheduler); absent without it. */
  cancel?: CancelRoutesDeps;
  /** The tenant's webhook endpoints (`/v1/webhooks`, delivery log, replay); the routes are absent without it. */
  webhooks?: WebhookRoutesDeps;
  /** The web console at `/console` (services/console); absent without it. */
  console?: ConsoleDeps;
}

export interface ResponseObservation {
  /** The route pattern (bounded), or 'unmatched'. */
  route: string;
  method: string;
  status: number;
  seconds: number;
}

export function buildApp(deps: IngestAppDeps): FastifyInstance {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    // Per-request lines are written by the onResponse hook below, with the tenant and at a level by status.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: deps.config.maxBodyBytes,
    ...apiServerOptions(),
    // The client IP behind that many proxies (the /u/ rate limit counts per client IP).
    trustProxy: trustedHops(deps.config.unsubscribe.trustProxyHops),
  });
  app.setValidatorCompiler(({ schema }) => {
    const check = TypeCompiler.Compile(schema as TSchema);
    return (data: unknown) => {
      if (check.Check(data)) return { value: data };
      return { error: new ValidationError(shapeIssues(check, data)) };
    };
  });
  // JSON only: without this a text/plain body would be parsed as a string and fail as a 400.
  app.removeContentTypeParser('text/plain');
  app.decorateRequest('tenant', '');
  // Before authentication: with two Authorization headers, which tenant is asking is a guess.
  app.addHook('onRequest', rejectRepeatedHeaders);
  app.addHook('onResponse', async (req, reply) => observe(deps, req, reply));
  app.setErrorHandler(async (err, req, reply) => {
    const h = toHttpError(err);
    if (h.status === 500) req.log.error({ err, tenant: req.tenant || undefined }, 'request failed');
    return reply.code(h.status).headers(h.headers).send(h.body);
  });
  app.setNotFoundHandler(async (req, reply) => reply.code(404).send({ error: { code: 'NOT_FOUND', message: `no route ${req.method} ${req.url.split('?')[0]}` } }));
  app.register(async (ops) => {
    if (!deps.config.metricsOnApiPort) ops.addHook('onRoute', (route) => void (route.url === '/metrics' && (route.handler = metricsElsewhere)));
    registerOpsRoutes(ops, { registry: deps.registry, readiness: deps.readiness });
  });
  if (deps.config.readApiUrl) registerReadApiForwarding(app, deps.config.readApiUrl);
  app.register(async (v1) => sendRoutes(v1, deps));
  const unsubscribe = deps.unsubscribe;
  if (unsubscribe) app.register(async (u) => unsubscribeRoutes(u, unsubscribe));

  if (deps.providerFeedback) app.register(async (feedback) => registerProviderFeedbackRoutes(feedback, deps.providerFeedback!));
  if (deps.console) app.register(async (c) => registerConsole(c, deps.console!), { prefix: '/console' });
  return app;
}

/** proxy-addr's trust function for `hops` proxies: the addresses nearest the socket are the proxies. */
function trustedHops(hops: number): false | ((address: string, hop: number) => boolean) {
  return hops > 0 ? (_address, hop) => hop < hops : false;
}

async function metricsElsewhere(req: FastifyRequest): Promise<never> {
  throw new RequestRejected('NOT_FOUND', `no route ${req.method} /metrics on the API port; metrics are served on the ops port`);
}

/**
 * One base URL for clients: the read API (message timelines, search, stats) lives in the
 * analytics service, which owns the ClickHouse data; ingest forwards those paths to it. The
 * Authorization header goes along and analytics checks it against the same keys.
 */
function registerReadApiForwarding(app: FastifyInstance, upstream: string): void {
  for (const prefix of ['/v1/messages', '/v1/stats']) {
    app.register(httpProxy, { upstream, prefix, rewritePrefix: prefix, httpMethods: ['GET', 'HEAD'] });
  }
}

async function sendRoutes(v1: FastifyInstance, deps: IngestAppDeps): Promise<void> {
  const { acceptor, config } = deps;
  // Authenticate before the body is read: an unauthenticated client costs no parsing.
  v1.addHook('onRequest', async (req, reply) => {
    const who = deps.apiKeys.identify(bearerToken(req.headers.authorization) ?? '');
    if (who === undefined) {
      reply.header('www-authenticate', 'Bearer');
      throw new RequestRejected('UNAUTHORIZED', 'missing or invalid API key');
    }
    const scope = requiredScope(req.method, req.routeOptions.url ?? req.url);
    if (!deps.apiKeys.permits(who, scope)) throw new RequestRejected('FORBIDDEN', `this API key does not have the "${scope}" scope`);
    req.tenant = who.tenant;
    req.log = req.log.child({ tenant: who.tenant, ...(who.keyId ? { keyId: who.keyId } : {}) });
  });
  if (config.rateLimitMax > 0) {
    // Route-level hooks run after the instance's, so the limiter sees the authenticated tenant.
    await v1.register(rateLimit, {
      max: config.rateLimitMax,
      timeWindow: config.rateLimitWindowMs,
      keyGenerator: (req) => req.tenant,
      errorResponseBuilder: (_req, ctx) => new RequestRejected('RATE_LIMITED', `rate limit of ${ctx.max} requests exceeded; retry in ${ctx.after}`, [], Math.ceil(ctx.ttl / 1000)),
    });
  }
  if (deps.templates) await templateRoutes(v1, deps.templates);
  if (deps.suppressions) await suppressionRoutes(v1, deps.suppressions);
  if (deps.deadLetters) await registerDeadLetterRoutes(v1, deps.deadLetters);
  if (deps.admin) await adminRoutes(v1, deps.admin);
  const errors = { 400: ErrorBodySchema, 401: ErrorBodySchema, 403: ErrorBodySchema, 409: ErrorBodySchema, 413: ErrorBodySchema, 415: ErrorBodySchema, 422: ErrorBodySchema, 429: ErrorBodySchema, 503: ErrorBodySchema };
  if (deps.inboundRoutes) await inboundRouteRoutes(v1, deps.inboundRoutes);
  if (deps.cancel) await cancelRoutes(v1, deps.cancel);
  if (deps.webhooks) await webhookRoutes(v1, deps.webhooks);

  v1.post<{ Body: EmailBody }>(
    '/v1/emails',
    { bodyLimit: config.maxBodyBytes, schema: { body: EmailBodySchema, response: { 202: AcceptedSchema, ...errors } } },
    async (req, reply) => {
      const key = idempotencyKeyOf(req);
      const { id, replayed } = await acceptor.accept(req.tenant, req.body, key);
      if (replayed) reply.header('idempotent-replayed', 'true');
      return reply.code(202).send({ id });
    },
  );

  v1.post<{ Body: BatchBody }>(
    '/v1/emails/batch',
    { bodyLimit: config.maxBatchBodyBytes, schema: { body: BatchBodySchema, response: { ...errors, 202: BatchResultSchema, 207: BatchResultSchema, 503: BatchResultSchema } } },
    async (req, reply) => {
      const results = await acceptor.acceptBatch(req.tenant, req.body.messages, idempotencyKeyOf(req));
      return reply.code(batchStatus(results.map((r) => r.status))).send({ results });
    },
  );
}

/**
 * 202 when every item was accepted; 503 when none was and the broker is why (retrying the
 * whole batch is then safe); otherwise 207 — each item's own status says what happened.
 */
export function batchStatus(statuses: number[]): number {
  if (statuses.every((s) => s === 202)) return 202;
  if (statuses.every((s) => s !== 202) && statuses.includes(503)) return 503;
  return 207;
}

function idempotencyKeyOf(req: FastifyRequest): string | undefined {
  const raw = req.headers['idempotency-key'];
  if (raw === undefined) return undefined;
  if (Array.isArray(raw)) throw new RequestRejected('VALIDATION_FAILED', 'the request is invalid', [{ field: 'Idempotency-Key', message: 'given more than once' }]);
  checkIdempotencyKey(raw);
  return raw;
}

function observe(deps: IngestAppDeps, req: FastifyRequest, reply: FastifyReply): void {
  const status = reply.statusCode;
  const o: ResponseObservation = { route: req.routeOptions.url ?? 'unmatched', method: req.method, status, seconds: reply.elapsedTime / 1000 };
  deps.observer?.emit('response', o);
  if (o.route === '/metrics' || o.route === '/healthz' || o.route === '/readyz') return;
  const line = { route: o.route, status, ms: Math.round(reply.elapsedTime) };
  if (status >= 500) req.log.warn(line, 'answered');
  else if (status >= 400) req.log.info(line, 'answered');
  else req.log.debug(line, 'answered');
}
