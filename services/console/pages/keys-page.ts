/**
 * Keys: the tenant's API keys (any signed-in key with `read` sees its own tenant's list; an
 * admin key sees every tenant's, filtered by the tenant switched to), created (admin; the key is
 * shown on the answer page once, never stored in clear) and revoked (admin; refused at once on
 * every replica, and every console session signed in with it ends at its next request).
 */
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import type { ConsoleDeps } from '../console-app.js';
import { userOf } from '../console-app.js';
import { page } from '../console-views.js';
import { pageData, knownTenants } from '../page-data.js';
import { API_SCOPES, type ApiScope } from '../../../shared/contracts/admin-record.js';
import { ConsoleDenied } from '../console-errors.js';

const Scope = Type.Union(API_SCOPES.map((s) => Type.Literal(s)));
const CreateBody = Type.Object({
  tenant: Type.String({ minLength: 1, maxLength: 256 }),
  name: Type.String({ minLength: 1, maxLength: 128, pattern: '^[^\\u0000-\\u001f\\u007f]+$' }),
  scopes: Type.Optional(Type.Union([Scope, Type.Array(Scope, { maxItems: 3 })])),
  _csrf: Type.Optional(Type.String()),
});
const KeyParams = Type.Object({ id: Type.String({ pattern: '^[0-9a-f]{16}$' }) });

export async function keyRoutes(app: FastifyInstance, deps: ConsoleDeps): Promise<void> {
  // An admin key sees every tenant's keys; any other key its own tenant's.
  const list = (tenant: string, admin: boolean) => deps.directory.listKeys(admin ? undefined : tenant);

  app.get('/keys', { config: { consoleScope: ['read', 'admin'] } }, async (req, reply) => {
    const user = userOf(req);
    return page(reply, 'keys.hbs', pageData(req, deps, 'keys', 'API keys', { keys: list(user.tenant, user.can('admin')), scopesAll: API_SCOPES }));
  });

  app.post<{ Body: Static<typeof CreateBody> }>('/keys', { config: { consoleScope: 'admin' }, schema: { body: CreateBody } }, async (req, reply) => {
    const user = userOf(req);
    if (!knownTenants(deps).includes(req.body.tenant)) throw new ConsoleDenied(`no tenant "${req.body.tenant}"; create it first (postline tenants create)`, 404);
    const given = req.body.scopes === undefined ? [] : Array.isArray(req.body.scopes) ? req.body.scopes : [req.body.scopes];
    if (given.length === 0) throw new ConsoleDenied('choose at least one scope', 400);
    const { view, key } = await deps.directory.createKey({ tenant: req.body.tenant, name: req.body.name, scopes: given as ApiScope[] });
    req.log.info({ keyId: view.id, forTenant: view.tenant, scopes: view.scopes }, 'API key created from the console');
    return page(reply.code(201), 'keys.hbs', pageData(req, deps, 'keys', 'API keys', { created: { ...view, key }, keys: list(user.tenant, true), scopesAll: API_SCOPES }));
  });

  app.post<{ Params: Static<typeof KeyParams> }>('/keys/:id/revoke', { config: { consoleScope: 'admin' }, schema: { params: KeyParams } }, async (req, reply) => {
    const view = await deps.directory.revokeKey(req.params.id);
    if (!view) throw new ConsoleDenied(`no API key "${req.params.id}"`, 404);
    req.log.info({ keyId: view.id, forTenant: view.tenant }, 'API key revoked from the console');
    return reply.redirect(`/console/keys?revoked=${view.id}`, 303);
  });
}
