/**
 * Webhooks: the tenant's endpoints (URL, event filter, enabled or disabled and why, how the
 * latest deliveries went), created (the signing secret is on the answer page only), edited
 * (URL, description, filter, enabled), secret rotated (the new one shown once; the old one keeps
 * signing for `webhooks.secretOverlapMs`), deleted, the delivery log per endpoint, and a time
 * range of the tenant's events replayed to one. The same pieces the `/v1/webhooks` routes use
 * (endpoint book, SSRF guard, delivery log, replay) and the same scopes: `read` to see, `send`
 * to change.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import type { ConsoleDeps } from '../console-app.js';
import { userOf } from '../console-app.js';
import { page } from '../console-views.js';
import { pageData } from '../page-data.js';
import { ConsoleDenied } from '../console-errors.js';
import type { WebhookEndpoint } from '../../../shared/contracts/webhook-endpoint.js';
import type { DeliveryAttempt } from '../../../shared/webhooks/delivery-job.js';
import type { WebhookRoutesDeps } from '../../ingest/webhook-routes.js';
import { WEBHOOK_TYPES } from '../../../shared/webhooks/webhook-message.js';
import { SsrfRefused } from '../../../shared/http/ssrf-guard.js';

const Types = Type.Optional(Type.Union([Type.String({ maxLength: 64 }), Type.Array(Type.String({ maxLength: 64 }), { maxItems: 64 })]));
const EndpointForm = Type.Object({
  url: Type.String({ minLength: 1, maxLength: 2048 }),
  description: Type.Optional(Type.String({ maxLength: 500 })),
  eventTypes: Types,
  enabled: Type.Optional(Type.String({ maxLength: 8 })),
  _csrf: Type.Optional(Type.String()),
});
const ReplayForm = Type.Object({ from: Type.String({ minLength: 1, maxLength: 40 }), to: Type.Optional(Type.String({ maxLength: 40 })), _csrf: Type.Optional(Type.String()) });
const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });

/** What the list shows of an endpoint's health: from its state and its latest attempts (newest first). */
export function endpointHealth(e: Pick<WebhookEndpoint, 'enabled' | 'disabledReason' | 'disabledAt'>, recent: Array<Pick<DeliveryAttempt, 'outcome' | 'at' | 'status' | 'error' | 'nextAttemptAt'>>): { state: 'disabled' | 'failing' | 'healthy' | 'idle'; text: string } {
  if (!e.enabled) return { state: 'disabled', text: e.disabledReason === 'failing' ? 'disabled: kept failing' : `disabled${e.disabledReason === 'api' || !e.disabledReason ? '' : ` (${e.disabledReason})`}` };
  const last = recent.find((a) => a.outcome !== 'skipped');
  if (!last) return { state: 'idle', text: 'no deliveries yet' };
  if (last.outcome === 'delivered') return { state: 'healthy', text: `delivered${last.status ? ` (${last.status})` : ''}` };
  const failed = recent.filter((a) => a.outcome === 'failed' || a.outcome === 'gave-up').length;
  const why = last.status ? `answered ${last.status}` : (last.error ?? 'failed');
  return { state: 'failing', text: `failing: ${why}; ${failed} of the last ${recent.length} attempts failed${last.nextAttemptAt ? `, next try ${last.nextAttemptAt.replace('T', ' ').replace(/\.\d+Z$|Z$/, ' UTC')}` : ''}` };
}

/** The form's event types: known webhook types only (unknown ones are a 400), none ticked: every `email.*` type. */
export function chosenTypes(given: string | string[] | undefined): string[] {
  const list = given === undefined ? [] : Array.isArray(given) ? given : [given];
  const unknown = list.filter((t) => !WEBHOOK_TYPES.includes(t));
  if (unknown.length) throw new ConsoleDenied(`unknown event type ${unknown.join(', ')}`, 400);
  return [...new Set(list)];
}

/** datetime-local ("2026-12-03T19:00", read as UTC as the page says) or full ISO → epoch ms. */
function utcMs(v: string, field: string): number {
  const s = /^\d{4}-\d\d-\d\dT\d\d:\d\d$/.test(v) ? `${v}:00Z` : v;
  const ms = Date.parse(s);
  if (!Number.isFinite(ms)) throw new ConsoleDenied(`${field}: not a time (UTC, YYYY-MM-DDTHH:MM)`, 400);
  return ms;
}

export async function webhookRoutes(app: FastifyInstance, deps: ConsoleDeps): Promise<void> {
  const hooks = deps.webhooks;
  if (!hooks) return;
  const checkedUrl = async (url: string): Promise<string> => {
    try {
      return (await hooks.guard.checkUrl(url.trim())).href;
    } catch (err) {
      if (err instanceof SsrfRefused) throw new ConsoleDenied(`url: ${err.message}`, 400);
      throw err;
    }
  };
  const found = (tenant: string, id: string): WebhookEndpoint => {
    const e = hooks.book.get(tenant, id);
    if (!e) throw new ConsoleDenied(`no webhook endpoint ${id}`, 404);
    return e;
  };
  const listPage = (req: FastifyRequest, reply: FastifyReply, extra: Record<string, unknown> = {}) => {
    const user = userOf(req);
    const endpoints = hooks.book.list(user.tenant).map((e) => {
      const recent = hooks.log?.recent(e.id, 20) ?? [];
      return { ...e, health: endpointHealth(e, recent), last: recent[0] };
    });
    return page(reply, 'webhooks.hbs', pageData(req, deps, 'webhooks', 'Webhooks', { endpoints, types: typeOptions([]), max: hooks.config.maxEndpointsPerTenant, ...extra }));
  };
  const endpointPage = (req: FastifyRequest, reply: FastifyReply, e: WebhookEndpoint, extra: Record<string, unknown> = {}) => {
    const deliveries = hooks.log?.recent(e.id, 100) ?? [];
    return page(reply, 'webhook.hbs', pageData(req, deps, 'webhooks', `Webhook ${e.url}`, { e, health: endpointHealth(e, deliveries.slice(0, 20)), deliveries, logAvailable: hooks.log !== undefined, replayAvailable: hooks.replay !== undefined, types: typeOptions(e.eventTypes), ...extra }));
  };

  app.get('/webhooks', async (req, reply) => listPage(req, reply));

  app.post<{ Body: Static<typeof EndpointForm> }>('/webhooks', { config: { consoleScope: 'send' }, schema: { body: EndpointForm } }, async (req, reply) => {
    const user = userOf(req);
    if (hooks.book.list(user.tenant).length >= hooks.config.maxEndpointsPerTenant) throw new ConsoleDenied(`at most ${hooks.config.maxEndpointsPerTenant} webhook endpoints per tenant`, 400);
    const url = await checkedUrl(req.body.url);
    const created = await hooks.book.create(user.tenant, { url, eventTypes: chosenTypes(req.body.eventTypes), enabled: req.body.enabled === 'on', ...(req.body.description?.trim() ? { description: req.body.description.trim() } : {}) });
    req.log.info({ endpoint: created.id, url }, 'webhook endpoint created from the console');
    return listPage(req, reply.code(201), { created: { id: created.id, url: created.url, secret: created.secrets[0].secret } });
  });

  app.get<{ Params: Static<typeof IdParams> }>('/webhooks/:id', { schema: { params: IdParams } }, async (req, reply) => endpointPage(req, reply, found(userOf(req).tenant, req.params.id)));

  app.post<{ Params: Static<typeof IdParams>; Body: Static<typeof EndpointForm> }>('/webhooks/:id', { config: { consoleScope: 'send' }, schema: { params: IdParams, body: EndpointForm } }, async (req, reply) => {
    const user = userOf(req);
    const before = found(user.tenant, req.params.id);
    const enabled = req.body.enabled === 'on';
    const updated = await hooks.book.update(user.tenant, before.id, { url: await checkedUrl(req.body.url), description: req.body.description?.trim() ?? '', eventTypes: chosenTypes(req.body.eventTypes), enabled });
    if (!updated) throw new ConsoleDenied(`no webhook endpoint ${before.id}`, 404);
    req.log.info({ endpoint: updated.id, enabled: updated.enabled }, 'webhook endpoint updated from the console');
    await announceEnabled(deps, hooks, user.tenant, before, updated);
    return reply.redirect(`/console/webhooks/${encodeURIComponent(updated.id)}?saved=1`, 303);
  });

  app.post<{ Params: Static<typeof IdParams> }>('/webhooks/:id/rotate', { config: { consoleScope: 'send' }, schema: { params: IdParams } }, async (req, reply) => {
    const user = userOf(req);
    found(user.tenant, req.params.id);
    const rotated = await hooks.book.rotate(user.tenant, req.params.id, hooks.config.secretOverlapMs);
    if (!rotated) throw new ConsoleDenied(`no webhook endpoint ${req.params.id}`, 404);
    req.log.info({ endpoint: rotated.id }, 'webhook secret rotated from the console');
    return endpointPage(req, reply, rotated, { rotatedSecret: rotated.secrets[0].secret, oldUntil: rotated.secrets[1]?.expiresAt });
  });

  app.post<{ Params: Static<typeof IdParams> }>('/webhooks/:id/delete', { config: { consoleScope: 'send' }, schema: { params: IdParams } }, async (req, reply) => {
    const user = userOf(req);
    const e = found(user.tenant, req.params.id);
    if (!(await hooks.book.remove(user.tenant, e.id))) throw new ConsoleDenied(`no webhook endpoint ${e.id}`, 404);
    hooks.log?.forget(e.id);
    req.log.info({ endpoint: e.id }, 'webhook endpoint deleted from the console');
    return listPage(req, reply, { notice: `Webhook endpoint ${e.url} deleted.` });
  });

  app.post<{ Params: Static<typeof IdParams>; Body: Static<typeof ReplayForm> }>('/webhooks/:id/replay', { config: { consoleScope: 'send' }, schema: { params: IdParams, body: ReplayForm } }, async (req, reply) => {
    const user = userOf(req);
    const e = found(user.tenant, req.params.id);
    if (!hooks.replay) throw new ConsoleDenied('replay is not available on this API', 404);
    const fromMs = utcMs(req.body.from, 'from');
    const toMs = req.body.to?.trim() ? utcMs(req.body.to.trim(), 'to') : Date.now();
    if (toMs < fromMs) throw new ConsoleDenied('to: must not be before from', 400);
    const result = await hooks.replay(e, fromMs, toMs);
    req.log.info({ endpoint: e.id, ...result }, 'webhook replay queued from the console');
    return endpointPage(req, reply.code(202), e, { replayed: { ...result, from: new Date(fromMs).toISOString(), to: new Date(toMs).toISOString() } });
  });
}

/** As `PATCH /v1/webhooks/:id`: switching on an endpoint the service had disabled is announced (`enabled`, ops scope webhook). */
async function announceEnabled(deps: ConsoleDeps, hooks: WebhookRoutesDeps, tenant: string, before: WebhookEndpoint, after: WebhookEndpoint): Promise<void> {
  const events = hooks.events ?? deps.events;
  if (!before.enabled && after.enabled && before.disabledReason === 'failing') await events?.publish({ type: 'enabled', messageId: '', tenant, reason: 'api', ops: { scope: 'webhook', target: after.id } });
}

function typeOptions(chosen: string[]): Array<{ type: string; checked: boolean; id: string }> {
  return WEBHOOK_TYPES.map((t) => ({ type: t, checked: chosen.includes(t), id: `t-${t.replace(/\./g, '-')}` }));
}
