/**
 * Keys: the tenant's API keys (any signed-in key with `read` sees its own tenant's list; an
 * admin key sees every tenant's, filtered by the tenant switched to), created (admin; the key is
 * shown on the answer page once, never stored in clear) and revoked (admin; refused at once on
 * every replica, and every console session signed in with it ends at its next request).
 * Tenants (admin: created) and sender domains (admin: added and removed; any key sees its own
 * tenant's) through the AdminDirectory the `/v1/admin/tenants|domains` routes use; domains from
 * configuration (`ingest.senderDomains`) are listed, and change only there.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import type { ConsoleDeps } from '../console-app.js';
import { userOf } from '../console-app.js';
import { page } from '../console-views.js';
import { pageData, knownTenants } from '../page-data.js';
import { API_SCOPES, type ApiScope } from '../../../shared/contracts/admin-record.js';
import { normalizeSenderDomain } from '../../../shared/admin/admin-directory.js';
import { ConsoleDenied } from '../console-errors.js';

const Scope = Type.Union(API_SCOPES.map((s) => Type.Literal(s)));
const CreateBody = Type.Object({
  tenant: Type.String({ minLength: 1, maxLength: 256 }),
  name: Type.String({ minLength: 1, maxLength: 128, pattern: '^[^\\u0000-\\u001f\\u007f]+$' }),
  scopes: Type.Optional(Type.Union([Scope, Type.Array(Scope, { maxItems: 3 })])),
  _csrf: Type.Optional(Type.String()),
});
const KeyParams = Type.Object({ id: Type.String({ pattern: '^[0-9a-f]{16}$' }) });
const TenantBody = Type.Object({ name: Type.String({ minLength: 1, maxLength: 128, pattern: '^[^\\u0000-\\u001f\\u007f]+$' }), _csrf: Type.Optional(Type.String()) });
const DomainBody = Type.Object({ tenant: Type.String({ minLength: 1, maxLength: 128 }), domain: Type.String({ minLength: 1, maxLength: 255 }), _csrf: Type.Optional(Type.String()) });

export async function keyRoutes(app: FastifyInstance, deps: ConsoleDeps): Promise<void> {
  // An admin key sees every tenant's keys; any other key its own tenant's.
  const list = (tenant: string, admin: boolean) => deps.directory.listKeys(admin ? undefined : tenant);

  /** Sender domains: administered ones and configured ones (every tenant's for an admin). */
  const domains = (tenant: string, admin: boolean) => {
    const items: Array<{ tenant: string; domain: string; createdAt?: string; source: 'admin' | 'config' }> = deps.directory.listDomains(admin ? undefined : tenant).map((d) => ({ tenant: d.tenant, domain: d.domain, createdAt: d.createdAt, source: 'admin' }));
    for (const [t, ds] of Object.entries(deps.configuredDomains ?? {})) if (admin || t === tenant) for (const domain of ds) items.push({ tenant: t, domain, source: 'config' });
    return items.sort((a, b) => a.tenant.localeCompare(b.tenant) || a.domain.localeCompare(b.domain));
  };
  const tenantsOf = () => {
    const administered = new Map(deps.directory.listTenants().map((t) => [t.name, t.createdAt]));
    return knownTenants(deps).map((name) => ({ name, createdAt: administered.get(name), source: administered.has(name) ? 'admin' : 'config' }));
  };
  const render = (req: FastifyRequest, reply: FastifyReply, extra: Record<string, unknown> = {}) => {
    const user = userOf(req);
    const admin = user.can('admin');
    return page(reply, 'keys.hbs', pageData(req, deps, 'keys', 'API keys', { keys: list(user.tenant, admin), scopesAll: API_SCOPES, domains: domains(user.tenant, admin), allTenants: admin ? tenantsOf() : [], ...extra }));
  };
  const knownTenant = (tenant: string) => {
    if (!knownTenants(deps).includes(tenant)) throw new ConsoleDenied(`no tenant "${tenant}"; create it first`, 404);
  };

  app.get('/keys', { config: { consoleScope: ['read', 'admin'] } }, async (req, reply) => render(req, reply));

  app.post<{ Body: Static<typeof TenantBody> }>('/keys/tenants', { config: { consoleScope: 'admin' }, schema: { body: TenantBody } }, async (req, reply) => {
    const t = await deps.directory.createTenant(req.body.name.trim());
    req.log.info({ created: t.name }, 'tenant created from the console');
    return render(req, reply.code(201), { notice: `Tenant ${t.name} created: create a key for it below.` });
  });

  app.post<{ Body: Static<typeof DomainBody> }>('/keys/domains', { config: { consoleScope: 'admin' }, schema: { body: DomainBody } }, async (req, reply) => {
    knownTenant(req.body.tenant);
    const d = await deps.directory.addDomain(req.body.tenant, req.body.domain);
    req.log.info({ forTenant: d.tenant, domain: d.domain }, 'sender domain added from the console');
    return render(req, reply.code(201), { notice: `${d.domain} is a sender domain of ${d.tenant}.` });
  });

  app.post<{ Body: Static<typeof DomainBody> }>('/keys/domains/remove', { config: { consoleScope: 'admin' }, schema: { body: DomainBody } }, async (req, reply) => {
    const domain = normalizeSenderDomain(req.body.domain);
    if (!(await deps.directory.removeDomain(req.body.tenant, domain))) throw new ConsoleDenied(`tenant "${req.body.tenant}" has no sender domain "${domain}" added by an administrator`, 404);
    req.log.info({ forTenant: req.body.tenant, domain }, 'sender domain removed from the console');
    return render(req, reply, { notice: `${domain} is no longer a sender domain of ${req.body.tenant}.` });
  });

  app.post<{ Body: Static<typeof CreateBody> }>('/keys', { config: { consoleScope: 'admin' }, schema: { body: CreateBody } }, async (req, reply) => {
    if (!knownTenants(deps).includes(req.body.tenant)) throw new ConsoleDenied(`no tenant "${req.body.tenant}"; create it first (postline tenants create)`, 404);
    const given = req.body.scopes === undefined ? [] : Array.isArray(req.body.scopes) ? req.body.scopes : [req.body.scopes];
    if (given.length === 0) throw new ConsoleDenied('choose at least one scope', 400);
    const { view, key } = await deps.directory.createKey({ tenant: req.body.tenant, name: req.body.name, scopes: given as ApiScope[] });
    req.log.info({ keyId: view.id, forTenant: view.tenant, scopes: view.scopes }, 'API key created from the console');
    return render(req, reply.code(201), { created: { ...view, key } });
  });

  app.post<{ Params: Static<typeof KeyParams> }>('/keys/:id/revoke', { config: { consoleScope: 'admin' }, schema: { params: KeyParams } }, async (req, reply) => {
    const view = await deps.directory.revokeKey(req.params.id);
    if (!view) throw new ConsoleDenied(`no API key "${req.params.id}"`, 404);
    req.log.info({ keyId: view.id, forTenant: view.tenant }, 'API key revoked from the console');
    return reply.redirect(`/console/keys?revoked=${view.id}`, 303);
  });
}
