/**
 * Administration over the send API (`/v1/admin/...`, admin-scoped keys only — the scope check is
 * the /v1 authentication hook's, see shared/admin/route-scopes.ts):
 *
 * - `GET /v1/admin/tenants`, `POST /v1/admin/tenants` {name};
 * - `GET /v1/admin/keys[?tenant=T]`, `POST /v1/admin/keys` {tenant, name, scopes} → the key,
 *   shown in this answer only, `DELETE /v1/admin/keys/:id` → revoked at once on every replica;
 * - `GET /v1/admin/domains[?tenant=T]`, `POST /v1/admin/domains` {tenant, domain},
 *   `DELETE /v1/admin/domains/:domain?tenant=T`.
 *
 * Everything is written to `email.admin` through the AdminDirectory. Log lines name tenants and
 * key ids, never a key.
 */
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { RequestRejected } from '../../shared/http/errors.js';
import { TenantName, ScopesSchema, type ApiScope } from '../../shared/contracts/admin-record.js';
import { BOOTSTRAP_SCOPES, type ApiKeyStore } from '../../shared/http/api-keys.js';
import { normalizeSenderDomain, type AdminDirectory } from '../../shared/admin/admin-directory.js';
import { ErrorBodySchema } from './email-body-schema.js';

export interface AdminRoutesDeps {
  directory: AdminDirectory;
  apiKeys: ApiKeyStore;
  /** `ingest.senderDomains`: listed with `source: "config"` (changed only in configuration). */
  configuredDomains: Readonly<Record<string, readonly string[]>>;
}

const TenantBody = Type.Object({ name: TenantName }, { additionalProperties: false });
const KeyBody = Type.Object(
  { tenant: TenantName, name: Type.String({ minLength: 1, maxLength: 128, pattern: '^[^\\u0000-\\u001f\\u007f]+$' }), scopes: Type.Optional(ScopesSchema) },
  { additionalProperties: false },
);
const DomainBody = Type.Object({ tenant: TenantName, domain: Type.String({ minLength: 1, maxLength: 255 }) }, { additionalProperties: false });
const TenantQuery = Type.Object({ tenant: Type.Optional(TenantName) }, { additionalProperties: false });
const KeyParams = Type.Object({ id: Type.String({ pattern: '^[0-9a-f]{16}$' }) });
const DomainParams = Type.Object({ domain: Type.String({ minLength: 1, maxLength: 255 }) });
const DomainDeleteQuery = Type.Object({ tenant: TenantName }, { additionalProperties: false });

const errors = { 400: ErrorBodySchema, 401: ErrorBodySchema, 403: ErrorBodySchema, 404: ErrorBodySchema, 409: ErrorBodySchema, 415: ErrorBodySchema, 503: ErrorBodySchema };

export async function adminRoutes(v1: FastifyInstance, deps: AdminRoutesDeps): Promise<void> {
  const { directory } = deps;
  /** A tenant exists when an administrator created it or a configured key names it. */
  const knownTenant = (tenant: string): void => {
    if (directory.hasTenant(tenant) || deps.apiKeys.bootstrapTenants().has(tenant)) return;
    throw new RequestRejected('NOT_FOUND', `no tenant "${tenant}"; create it first (POST /v1/admin/tenants)`);
  };

  v1.get('/v1/admin/tenants', async () => {
    const items: Array<{ name: string; createdAt?: string; source: 'admin' | 'config' }> = directory.listTenants().map((t) => ({ name: t.name, createdAt: t.createdAt, source: 'admin' }));
    for (const name of deps.apiKeys.bootstrapTenants()) if (!directory.hasTenant(name)) items.push({ name, source: 'config' });
    return { items: items.sort((a, b) => a.name.localeCompare(b.name)) };
  });

  v1.post<{ Body: Static<typeof TenantBody> }>('/v1/admin/tenants', { schema: { body: TenantBody, response: errors } }, async (req, reply) => {
    const t = await directory.createTenant(req.body.name);
    req.log.info({ created: t.name }, 'tenant created');
    return reply.code(201).send({ name: t.name, createdAt: t.createdAt, source: 'admin' });
  });

  v1.get<{ Querystring: Static<typeof TenantQuery> }>('/v1/admin/keys', { schema: { querystring: TenantQuery, response: errors } }, async (req) => ({ items: directory.listKeys(req.query.tenant) }));

  v1.post<{ Body: Static<typeof KeyBody> }>('/v1/admin/keys', { schema: { body: KeyBody, response: errors } }, async (req, reply) => {
    knownTenant(req.body.tenant);
    const scopes = (req.body.scopes ?? [...BOOTSTRAP_SCOPES]) as ApiScope[];
    const { view, key } = await directory.createKey({ tenant: req.body.tenant, name: req.body.name, scopes });
    req.log.info({ keyId: view.id, forTenant: view.tenant, scopes: view.scopes }, 'API key created');
    return reply.code(201).header('cache-control', 'no-store').send({ ...view, key });
  });

  v1.delete<{ Params: Static<typeof KeyParams> }>('/v1/admin/keys/:id', { schema: { params: KeyParams, response: errors } }, async (req) => {
    const view = await directory.revokeKey(req.params.id);
    if (!view) throw new RequestRejected('NOT_FOUND', `no API key "${req.params.id}"`);
    req.log.info({ keyId: view.id, forTenant: view.tenant }, 'API key revoked');
    return view;
  });

  v1.get<{ Querystring: Static<typeof TenantQuery> }>('/v1/admin/domains', { schema: { querystring: TenantQuery, response: errors } }, async (req) => {
    const tenant = req.query.tenant;
    const items: Array<{ tenant: string; domain: string; createdAt?: string; source: 'admin' | 'config' }> = directory
      .listDomains(tenant)
      .map((d) => ({ tenant: d.tenant, domain: d.domain, createdAt: d.createdAt, source: 'admin' }));
    for (const [t, list] of Object.entries(deps.configuredDomains)) {
      if (tenant === undefined || t === tenant) for (const domain of list) items.push({ tenant: t, domain, source: 'config' });
    }
    return { items: items.sort((a, b) => a.tenant.localeCompare(b.tenant) || a.domain.localeCompare(b.domain)) };
  });

  v1.post<{ Body: Static<typeof DomainBody> }>('/v1/admin/domains', { schema: { body: DomainBody, response: errors } }, async (req, reply) => {
    knownTenant(req.body.tenant);
    const d = await directory.addDomain(req.body.tenant, req.body.domain);
    req.log.info({ forTenant: d.tenant, domain: d.domain }, 'sender domain added');
    return reply.code(201).send({ tenant: d.tenant, domain: d.domain, createdAt: d.createdAt, source: 'admin' });
  });

  v1.delete<{ Params: Static<typeof DomainParams>; Querystring: Static<typeof DomainDeleteQuery> }>(
    '/v1/admin/domains/:domain',
    { schema: { params: DomainParams, querystring: DomainDeleteQuery, response: errors } },
    async (req, reply) => {
      const domain = normalizeSenderDomain(req.params.domain);
      if (!(await directory.removeDomain(req.query.tenant, domain))) throw new RequestRejected('NOT_FOUND', `tenant "${req.query.tenant}" has no sender domain "${domain}" added by an administrator`);
      req.log.info({ forTenant: req.query.tenant, domain }, 'sender domain removed');
      return reply.code(204).send();
    },
  );
}
