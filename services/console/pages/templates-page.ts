/**
 * Templates: the tenant's list, an editor (subject, HTML, text) with a live preview (htmx posts
 * the form as the user types; the renderer's code renders it with sample data, errors at their
 * line), and saving (`send` scope) to email.templates through the TemplateRepository, checked
 * exactly as `PUT /v1/templates/:name` checks it.
 */
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import type { ConsoleDeps } from '../console-app.js';
import { userOf } from '../console-app.js';
import { page } from '../console-views.js';
import { pageData } from '../page-data.js';
import { TEMPLATE_NAME_PATTERN, TEMPLATE_LIMITS, type TemplateInput } from '../../../shared/templates/template-schema.js';
import { previewTemplate, sampleData } from '../template-preview.js';
import { ConsoleDenied } from '../console-errors.js';
import { ValidationError } from '../../../shared/errors.js';

const Name = Type.Object({ name: Type.String({ pattern: TEMPLATE_NAME_PATTERN }) });
const Editor = Type.Object({
  subject: Type.String({ maxLength: TEMPLATE_LIMITS.subjectChars }),
  html: Type.Optional(Type.String({ maxLength: TEMPLATE_LIMITS.bodyChars })),
  text: Type.Optional(Type.String({ maxLength: TEMPLATE_LIMITS.bodyChars })),
  sample: Type.Optional(Type.String({ maxLength: 64 * 1024 })),
  _csrf: Type.Optional(Type.String()),
});
type Editor = Static<typeof Editor>;

/** The form as a template source: empty parts are absent. */
function sourceOf(body: Editor): Omit<TemplateInput, 'partials'> {
  return { subject: body.subject, ...(body.html?.trim() ? { html: body.html } : {}), ...(body.text?.trim() ? { text: body.text } : {}) };
}

function parseSample(raw: string | undefined): { data?: Record<string, unknown>; error?: string } {
  if (!raw?.trim()) return { data: {} };
  try {
    const v = JSON.parse(raw) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) return { data: v as Record<string, unknown> };
    return { error: 'Sample data must be a JSON object, e.g. {"name": "Ada"}' };
  } catch (err) {
    return { error: `Sample data is not JSON: ${(err as Error).message}` };
  }
}

export function previewView(body: Editor, partials?: Record<string, string>): Record<string, unknown> {
  const sample = parseSample(body.sample);
  if (sample.error) return { errors: [{ part: 'sample data', message: sample.error }] };
  const p = previewTemplate({ ...sourceOf(body), ...(partials ? { partials } : {}) }, sample.data!);
  return p.ok ? { rendered: p.rendered } : { errors: p.errors };
}

export async function templateRoutes(app: FastifyInstance, deps: ConsoleDeps): Promise<void> {
  app.get('/templates', async (req, reply) => {
    const user = userOf(req);
    return page(reply, 'templates.hbs', pageData(req, deps, 'templates', 'Templates', { templates: deps.templates.list(user.tenant) }));
  });

  app.get<{ Querystring: { name?: string } }>('/templates/new', async (req, reply) => {
    const name = (req.query.name ?? '').trim();
    if (!new RegExp(TEMPLATE_NAME_PATTERN).test(name)) throw new ConsoleDenied('a template name is letters, digits, ".", "_" and "-" (at most 128)', 400);
    return reply.redirect(`/console/templates/${encodeURIComponent(name)}`, 303);
  });

  app.get<{ Params: Static<typeof Name>; Querystring: { saved?: string } }>('/templates/:name', { schema: { params: Name } }, async (req, reply) => {
    const user = userOf(req);
    const t = deps.templates.get(user.tenant, req.params.name);
    const form: Editor = t ? { subject: t.subject, html: t.html, text: t.text } : { subject: 'Hello {{name}}', html: '<p>Hello {{name}},</p>\n<p>…</p>', text: 'Hello {{name}},\n…' };
    form.sample = JSON.stringify(sampleData({ ...sourceOf(form), ...(t?.partials ? { partials: t.partials } : {}) }), null, 2);
    return page(reply, 'template.hbs', pageData(req, deps, 'templates', `Template ${req.params.name}`, { name: req.params.name, saved: /^\d+$/.test(req.query.saved ?? '') ? req.query.saved : undefined, exists: !!t, version: t?.version, updatedAt: t?.updatedAt, partials: Object.keys(t?.partials ?? {}), form, preview: previewView(form, t?.partials) }));
  });

  app.post<{ Params: Static<typeof Name>; Body: Editor }>('/templates/:name/preview', { schema: { params: Name, body: Editor } }, async (req, reply) => {
    const user = userOf(req);
    return reply.type('text/html').view('partials/preview.hbs', previewView(req.body, deps.templates.get(user.tenant, req.params.name)?.partials));
  });

  app.post<{ Params: Static<typeof Name>; Body: Editor }>('/templates/:name', { config: { consoleScope: 'send' }, schema: { params: Name, body: Editor } }, async (req, reply) => {
    const user = userOf(req);
    const existing = deps.templates.get(user.tenant, req.params.name);
    let stored;
    try {
      stored = await deps.templates.put(user.tenant, req.params.name, { ...sourceOf(req.body), ...(existing?.partials ? { partials: existing.partials } : {}) });
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      // The editor again, with what was typed and why it was not saved.
      const data = { name: req.params.name, exists: !!existing, version: existing?.version, updatedAt: existing?.updatedAt, partials: Object.keys(existing?.partials ?? {}), form: req.body, preview: previewView(req.body, existing?.partials), notSaved: err.issues };
      return page(reply.code(400), 'template.hbs', pageData(req, deps, 'templates', `Template ${req.params.name}`, data));
    }
    req.log.info({ template: stored.name, version: stored.version }, 'template stored from the console');
    return reply.redirect(`/console/templates/${encodeURIComponent(stored.name)}?saved=${stored.version}`, 303);
  });
}
