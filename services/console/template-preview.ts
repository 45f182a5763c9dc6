/**
 * The Templates page's live preview: the renderer's own template code (`templateIssues`,
 * `compileTemplate`, its helpers and strict mode) run on sample data, with every error placed
 * at the part and line Handlebars reports. Pure: no I/O.
 */
import Handlebars from 'handlebars';
import { compileTemplate, templateIssues, TemplateRenderError, type RenderedTemplate, type TemplateSource } from '../../shared/templates/template-compiler.js';

export interface PreviewError {
  /** subject, html, text or partials.<name>. */
  part: string;
  line?: number;
  message: string;
  /** The source lines around `line` (numbered), the failing one marked. */
  excerpt?: Array<{ n: number; text: string; failing: boolean }>;
}

export type Preview = { ok: true; rendered: RenderedTemplate } | { ok: false; errors: PreviewError[] };

/** The line Handlebars names in a message: "Parse error on line 3:" or "… - 3:4". */
export function errorLine(message: string): number | undefined {
  const m = /Parse error on line (\d+)/.exec(message) ?? / - (\d+):\d+\s*$/.exec(message);
  return m ? Number(m[1]) : undefined;
}

function sourceOf(source: Omit<TemplateSource, 'name'>, part: string): string | undefined {
  if (part.startsWith('partials.')) return source.partials?.[part.slice('partials.'.length)];
  return (source as Record<string, unknown>)[part] as string | undefined;
}

function located(source: Omit<TemplateSource, 'name'>, part: string, message: string, line?: number): PreviewError {
  const n = line ?? errorLine(message);
  const text = sourceOf(source, part);
  const excerpt =
    n !== undefined && text !== undefined
      ? text
          .split('\n')
          .map((t, i) => ({ n: i + 1, text: t, failing: i + 1 === n }))
          .slice(Math.max(0, n - 3), n + 2)
      : undefined;
  return { part, ...(n !== undefined ? { line: n } : {}), message: message.replace(/^does not compile: /, ''), ...(excerpt ? { excerpt } : {}) };
}

/** Renders `source` with `data` as the renderer would, or says where it fails. */
export function previewTemplate(source: Omit<TemplateSource, 'name'>, data: Record<string, unknown>): Preview {
  const issues = templateIssues(source);
  if (issues.length > 0) return { ok: false, errors: issues.map((i) => located(source, i.path, i.message)) };
  try {
    return { ok: true, rendered: compileTemplate({ name: 'preview', ...source }, {}, 'preview').render(data) };
  } catch (err) {
    if (!(err instanceof TemplateRenderError)) throw err;
    const cause = err.cause as { message?: string; lineNumber?: number } | undefined;
    return { ok: false, errors: [located(source, err.part, cause?.message ?? err.message, cause?.lineNumber)] };
  }
}

/**
 * Sample data for a template: every simple `{{name}}` / `{{a.b}}` outside blocks gets its own
 * name as value, so a first preview renders under strict mode without typing any data.
 */
export function sampleData(source: Omit<TemplateSource, 'name'>): Record<string, unknown> {
  const data: Record<string, unknown> = {};
  class Finder extends Handlebars.Visitor {
    depth = 0;
    override BlockStatement(block: hbs.AST.BlockStatement): void {
      this.depth++;
      super.BlockStatement(block);
      this.depth--;
    }
    override MustacheStatement(m: hbs.AST.MustacheStatement): void {
      const p = m.path as hbs.AST.PathExpression;
      if (this.depth > 0 || m.params.length > 0 || m.hash || p.type !== 'PathExpression' || p.data || p.parts.length === 0) return;
      let at = data;
      p.parts.forEach((part, i) => {
        if (i === p.parts.length - 1) at[part] ??= p.original;
        else at = (at[part] && typeof at[part] === 'object' ? at[part] : (at[part] = {})) as Record<string, unknown>;
      });
    }
  }
  for (const text of [source.subject, source.html, source.text, ...Object.values(source.partials ?? {})]) {
    if (!text) continue;
    try {
      new Finder().accept(Handlebars.parse(text));
    } catch {
      // does not parse: the preview shows why
    }
  }
  return data;
}
