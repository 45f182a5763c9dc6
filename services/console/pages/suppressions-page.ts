/**
 * Suppressions: the tenant's list searched by address prefix and reason (the SuppressionBook
 * the `/v1/suppressions` routes use, paged by its cursor), an address added by hand and an
 * entry removed (`send` scope).
 */
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import type { ConsoleDeps } from '../console-app.js';
import { userOf } from '../console-app.js';
import { page } from '../console-views.js';
import { pageData } from '../page-data.js';
import { ConsoleDenied } from '../console-errors.js';

const SearchQuery = Type.Object({ address: Type.Optional(Type.String({ maxLength: 320 })), cursor: Type.Optional(Type.String({ maxLength: 1024 })) }, { additionalProperties: false });
const Address = Type.String({ minLength: 3, maxLength: 320, pattern: '^[^\\s@]+@[^\\s@]+$' });
const AddBody = Type.Object({ address: Address, list: Type.Optional(Type.String({ maxLength: 64 })), note: Type.Optional(Type.String({ maxLength: 256 })), _csrf: Type.Optional(Type.String()) });
const RemoveBody = Type.Object({ address: Address, list: Type.Optional(Type.String({ maxLength: 64 })), _csrf: Type.Optional(Type.String()) });

export async function suppressionRoutes(app: FastifyInstance, deps: ConsoleDeps): Promise<void> {
  const render = (req: Parameters<typeof userOf>[0], reply: import('fastify').FastifyReply, query: Static<typeof SearchQuery>, extra: Record<string, unknown> = {}) => {
    const user = userOf(req);
    const found = deps.suppressions.search(user.tenant, { limit: 50, ...(query.address?.trim() ? { address: query.address.trim() } : {}), ...(query.cursor ? { cursor: query.cursor } : {}) });
    const next = found.nextCursor ? new URLSearchParams({ ...(query.address ? { address: query.address } : {}), cursor: found.nextCursor }).toString() : undefined;
    return page(reply, 'suppressions.hbs', pageData(req, deps, 'suppressions', 'Suppressions', { query, items: found.items, next, ...extra }));
  };

  app.get<{ Querystring: Static<typeof SearchQuery> }>('/suppressions', { schema: { querystring: SearchQuery } }, async (req, reply) => render(req, reply, req.query));

  app.post<{ Body: Static<typeof AddBody> }>('/suppressions', { config: { consoleScope: 'send' }, schema: { body: AddBody } }, async (req, reply) => {
    const user = userOf(req);
    const address = req.body.address.trim().toLowerCase();
    const { stored, kept } = await deps.suppressions.add(user.tenant, [{ address, reason: 'manual', ...(req.body.list?.trim() ? { list: req.body.list.trim() } : {}), ...(req.body.note?.trim() ? { note: req.body.note.trim() } : {}) }]);
    return render(req, reply, {}, { notice: stored.length ? `${address} is suppressed.` : `${address} was already suppressed (${kept[0]?.reason}); kept as it was.` });
  });

  app.post<{ Body: Static<typeof RemoveBody> }>('/suppressions/remove', { config: { consoleScope: 'send' }, schema: { body: RemoveBody } }, async (req, reply) => {
    const user = userOf(req);
    const list = req.body.list?.trim() || undefined;
    if (!(await deps.suppressions.remove(user.tenant, req.body.address.toLowerCase(), list))) throw new ConsoleDenied(`${req.body.address} is not suppressed`, 404);
    return render(req, reply, {}, { notice: `${req.body.address} is no longer suppressed${list ? ` for list ${list}` : ''}.` });
  });
}
