/**
 * Compiles a template (subject, html, text and partials) once into a function that renders
 * all three parts. Each compiled template gets its own Handlebars environments
 * (`Handlebars.create()`), so one tenant's partials and helpers never reach another's.
 *
 * Escaping: the html part is compiled with escaping on (`{{x}}` HTML-escapes, `{{{x}}}` is
 * the template author's explicit opt-out). The subject and text parts are compiled with
 * `noEscape`: they are not HTML, and escaping would put `&amp;` into a subject line or a
 * plain-text body. They are still safe: the subject is a header that MailComposer encodes
 * (and CR/LF are folded here first, so data cannot start a new header), and the text part
 * is a `text/plain` body no client interprets as markup. Partials are compiled once per mode,
 * so a partial used by both the html and the text part escapes only in the html part.
 *
 * Strict mode: a `{{name}}` whose value is missing from the data throws (an email saying
 * "Hi ," is worse than a `failed` event); helper arguments stay lenient, so
 * `{{#if name}}` and `{{default name "there"}}` work for optional fields.
 *
 * Names every JavaScript object inherits (`constructor`, `toString`, `hasOwnProperty`, ...)
 * pass strict mode's `name in data` check, and Handlebars' prototype guard then renders them
 * as empty text and prints "Access has been denied" to stdout. A template naming one is
 * therefore refused when it is compiled (a missing variable no data can provide), and every
 * render passes the prototype-access options explicitly, so Handlebars never logs.
 */
import Handlebars from 'handlebars';
import { PermanentError, ValidationError } from '../errors.js';
import { registerSafeHelpers } from './template-helpers.js';

export interface TemplateSource {
  name: string;
  subject: string;
  html?: string;
  text?: string;
  /** Partials of this template; they override shared partials of the same name. */
  partials?: Record<string, string>;
}

export interface RenderedTemplate {
  subject: string;
  html?: string;
  text?: string;
}

export interface CompiledTemplate {
  readonly name: string;
  /** Identifies the source it was compiled from; a cache entry is stale when this differs. */
  readonly revision: string;
  /** Renders every part; throws TemplateRenderError naming the part. */
  render(data: Record<string, unknown>): RenderedTemplate;
}

export type TemplatePart = 'subject' | 'html' | 'text';

/** Rendering failed on the data (missing variable, helper error, missing partial): retrying cannot help. */
export class TemplateRenderError extends PermanentError {
  constructor(
    readonly template: string,
    readonly part: TemplatePart,
    cause: unknown,
  ) {
    super('TEMPLATE_RENDER_FAILED', `template "${template}" ${part}: ${(cause as Error)?.message ?? String(cause)}`, { cause });
  }
}

const HTML_OPTIONS: CompileOptions = { strict: true };
/** Explicit, so Handlebars' prototype guard answers "no" without writing to the console. */
const RUNTIME_OPTIONS: RuntimeOptions = { allowProtoPropertiesByDefault: false, allowProtoMethodsByDefault: false };
/** Names every object inherits: never template data. */
const INHERITED_NAMES: ReadonlySet<string> = new Set([...Object.getOwnPropertyNames(Object.prototype), 'prototype']);
const PLAIN_OPTIONS: CompileOptions = { strict: true, noEscape: true };
const SUBJECT_BREAKS = /[\r\n\u0000]+/g;

type Delegate = (context: unknown, options?: RuntimeOptions) => string;

function environment(partials: Record<string, string>, options: CompileOptions): typeof Handlebars {
  const env = Handlebars.create();
  registerSafeHelpers(env);
  // Registered compiled, not as source: Handlebars would otherwise recompile a source partial
  // on every render that passes its own partials, and could not pick the escaping mode.
  for (const [name, source] of Object.entries(partials)) env.registerPartial(name, env.compile(source, options));
  return env;
}

/**
 * Handlebars' `compile` only returns a stub: it parses and generates the template's code on
 * its first call, which would otherwise be the first message's render (~15 ms for a 5 kB HTML
 * template here, against ~0.2 ms for later renders). A call with empty data does that work now.
 * Strict mode usually throws at the first variable, after the code was generated: that is the
 * point, so whatever it throws is ignored (a real render reports its own errors). Partials
 * stay lazy: each template's environments hold every shared partial, most of them unused.
 */
function compileNow(fn: Delegate): void {
  try {
    fn({}, RUNTIME_OPTIONS);
  } catch {
    // expected: missing variables
  }
}

/** Compiles a template; `sharedPartials` (the templates directory's) are visible under its own. */
export function compileTemplate(source: TemplateSource, sharedPartials: Record<string, string>, revision: string): CompiledTemplate {
  const issues = templateIssues(source);
  if (issues.length > 0) throw new PermanentError('TEMPLATE_INVALID', `template "${source.name}" does not compile: ${new ValidationError(issues).message}`);
  const partials = { ...sharedPartials, ...source.partials };
  const html = environment(partials, HTML_OPTIONS);
  const plain = environment(partials, PLAIN_OPTIONS);
  const parts: Array<[TemplatePart, Delegate]> = [['subject', plain.compile(source.subject, PLAIN_OPTIONS)]];
  if (source.html !== undefined) parts.push(['html', html.compile(source.html, HTML_OPTIONS)]);
  if (source.text !== undefined) parts.push(['text', plain.compile(source.text, PLAIN_OPTIONS)]);
  for (const [, fn] of parts) compileNow(fn);
  const name = source.name;
  return {
    name,
    revision,
    render(data) {
      const out: RenderedTemplate = { subject: '' };
      for (const [part, fn] of parts) {
        let value: string;
        try {
          value = fn(data, RUNTIME_OPTIONS);
        } catch (err) {
          throw new TemplateRenderError(name, part, err);
        }
        if (part === 'subject') out.subject = value.replace(SUBJECT_BREAKS, ' ').trim();
        else out[part] = value;
      }
      return out;
    },
  };
}

/** Collects the path expressions (`{{a.b}}`, `{{#each a}}`, helper arguments) naming an inherited property. */
class InheritedNameFinder extends Handlebars.Visitor {
  readonly found: string[] = [];
  override PathExpression(path: hbs.AST.PathExpression): void {
    if (path.parts.some((p) => INHERITED_NAMES.has(p))) this.found.push(path.original);
  }
}

function precompileIssue(path: string, source: string, options: CompileOptions): { path: string; message: string } | undefined {
  try {
    Handlebars.precompile(source, options);
  } catch (err) {
    return { path, message: `does not compile: ${(err as Error).message.replace(/\s+/g, ' ').trim()}` };
  }
  const finder = new InheritedNameFinder();
  finder.accept(Handlebars.parse(source));
  if (finder.found.length === 0) return undefined;
  return { path, message: `missing variable: ${finder.found.map((f) => `{{${f}}}`).join(', ')} names a built-in property of every object, never template data` };
}

/**
 * Checks that every part and partial compiles (the full compiler runs, nothing is evaluated)
 * and that there is a body; returns issues naming the part (`html`, `partials.footer`).
 */
export function templateIssues(source: Omit<TemplateSource, 'name'>): Array<{ path: string; message: string }> {
  const issues: Array<{ path: string; message: string }> = [];
  const add = (i: { path: string; message: string } | undefined): void => void (i && issues.push(i));
  if (source.html === undefined && source.text === undefined) issues.push({ path: 'html', message: 'a template needs html, text or both' });
  add(precompileIssue('subject', source.subject, PLAIN_OPTIONS));
  if (source.html !== undefined) add(precompileIssue('html', source.html, HTML_OPTIONS));
  if (source.text !== undefined) add(precompileIssue('text', source.text, PLAIN_OPTIONS));
  for (const [name, partial] of Object.entries(source.partials ?? {})) add(partialIssue(`partials.${name}`, partial));
  return issues;
}

/** Checks that a partial compiles; returns an issue at `path` if not. */
export function partialIssue(path: string, source: string): { path: string; message: string } | undefined {
  return precompileIssue(path, source, HTML_OPTIONS);
}
