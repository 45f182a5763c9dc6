/**
 * What goes into the message: the request's own subject/html/text, or its template rendered
 * with its data. The template lookup is I/O (it may catch up with `email.templates`); the
 * rendering is pure and deterministic, so its errors are permanent.
 */
import type { EmailRequested } from '../../shared/contracts/email-requested.js';
import type { CompiledTemplate } from '../../shared/templates/template-compiler.js';
import type { MessageContent } from './mime-message.js';

export interface TemplateSource {
  compiled(tenant: string, name: string): Promise<CompiledTemplate>;
}

/** The compiled template a request names, or undefined for inline content. */
export async function templateFor(req: EmailRequested, templates: TemplateSource): Promise<CompiledTemplate | undefined> {
  return req.template ? templates.compiled(req.tenant, req.template.name) : undefined;
}

/**
 * Renders the content. With a template, a `subject` in the request overrides the template's
 * (subject tests without a template per variant); html and text always come from the template.
 */
export function messageContent(req: EmailRequested, template: CompiledTemplate | undefined): MessageContent {
  if (!template) return { subject: req.subject, html: req.html, text: req.text };
  const rendered = template.render((req.template?.data ?? {}) as Record<string, unknown>);
  return { subject: req.subject ?? rendered.subject, html: rendered.html, text: rendered.text };
}
