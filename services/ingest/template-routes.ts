/**
 * Per-tenant templates over the send API: `PUT /v1/templates/:name` stores a template on the
 * compacted `email.templates` topic (after checking every part compiles), `GET` reads one back,
 * `GET /v1/templates` lists the tenant's own, `DELETE` removes one. A tenant only ever sees and
 * changes its own templates. The renderer picks a change up for the very next email.
 */
import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import { TEMPLATE_NAME_PATTERN, TemplateInputSchema, type StoredTemplate, type TemplateInput } from '../../shared/templates/template-schema.js';
import type { TemplateRepository } from '../../shared/templates/template-repository.js';
import { RequestRejected } from '../../shared/http/errors.js';
import { ErrorBodySchema } from './email-body-schema.js';

// Checked on every route, not only PUT: a name is never a path (`eu%2Fwelcome` is a 400).
const Params = Type.Object({ name: Type.String({ pattern: TEMPLATE_NAME_PATTERN }) });

function view(t: StoredTemplate): Record<string, unknown> {
  return { name: t.name, subject: t.subject, html: t.html, text: t.text, partials: t.partials, version: t.version, updatedAt: t.updatedAt };
}

export async function templateRoutes(v1: FastifyInstance, templates: TemplateRepository): Promise<void> {
  const errors = { 400: ErrorBodySchema, 401: ErrorBodySchema, 404: ErrorBodySchema, 413: ErrorBodySchema, 415: ErrorBodySchema, 503: ErrorBodySchema };

  v1.put<{ Params: { name: string }; Body: TemplateInput }>('/v1/templates/:name', { schema: { params: Params, body: TemplateInputSchema, response: errors } }, async (req, reply) => {
    const stored = await templates.put(req.tenant, req.params.name, req.body);
    req.log.info({ template: stored.name, version: stored.version }, 'template stored');
    return reply.code(stored.version === 1 ? 201 : 200).send(view(stored));
  });

  v1.get<{ Params: { name: string } }>('/v1/templates/:name', { schema: { params: Params, response: errors } }, async (req) => {
    const t = templates.get(req.tenant, req.params.name);
    if (!t) throw new RequestRejected('NOT_FOUND', `no template "${req.params.name}"`);
    return view(t);
  });

  v1.get('/v1/templates', async (req) => ({ templates: templates.list(req.tenant).map(view) }));

  v1.delete<{ Params: { name: string } }>('/v1/templates/:name', { schema: { params: Params, response: errors } }, async (req, reply) => {
    if (!(await templates.delete(req.tenant, req.params.name))) throw new RequestRejected('NOT_FOUND', `no template "${req.params.name}"`);
    return reply.code(204).send();
  });
}
