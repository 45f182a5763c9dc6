/**
 * The helpers every template may use, registered into each template's own Handlebars
 * environment. Deliberately small and side-effect free: templates come from tenants, so a
 * helper may neither reach the file system nor the network nor the process's output.
 *
 * | helper | example | result |
 * |---|---|---|
 * | `eq a b` / `ne a b` | `{{#if (eq plan "pro")}}…{{/if}}` | strict (in)equality |
 * | `uppercase s` / `lowercase s` | `{{uppercase code}}` | case-mapped string ('' for null) |
 * | `default v fallback` | `{{default name "there"}}` | `v` unless null, undefined or '' |
 * | `formatDate d [locale=] [timeZone=] [dateStyle=] [timeStyle=]` | `{{formatDate order.at dateStyle="long" locale="de-DE"}}` | `Intl.DateTimeFormat`; `d` is an ISO string, epoch ms or Date; defaults: en-US, UTC, dateStyle medium |
 *
 * Handlebars' own `if`, `unless`, `each`, `with` and `lookup` stay; `log` renders nothing
 * (Handlebars' own writes to the process's console).
 */
import type HandlebarsNS from 'handlebars';

type HandlebarsEnv = typeof HandlebarsNS;
interface HelperOptions {
  hash?: Record<string, unknown>;
}

const DATE_STYLES = new Set(['full', 'long', 'medium', 'short']);
const formatters = new Map<string, Intl.DateTimeFormat>();
/** Distinct formatter option sets kept; creating an Intl formatter costs far more than using one. */
const MAX_FORMATTERS = 256;

function text(value: unknown): string {
  return value === null || value === undefined ? '' : String(value);
}

function toDate(value: unknown): Date {
  const d = value instanceof Date ? value : typeof value === 'number' || typeof value === 'string' ? new Date(value) : new Date(NaN);
  if (Number.isNaN(d.getTime())) throw new Error(`formatDate: not a date: ${JSON.stringify(value)}`);
  return d;
}

function styleOption(hash: Record<string, unknown>, key: string): Intl.DateTimeFormatOptions['dateStyle'] {
  const v = hash[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !DATE_STYLES.has(v)) throw new Error(`formatDate: ${key} must be full, long, medium or short`);
  return v as Intl.DateTimeFormatOptions['dateStyle'];
}

/** Formats a date with Intl (throws on an invalid date, locale or time zone: a data error). */
export function formatDate(value: unknown, hash: Record<string, unknown> = {}): string {
  const locale = text(hash.locale) || 'en-US';
  const timeZone = text(hash.timeZone) || 'UTC';
  const timeStyle = styleOption(hash, 'timeStyle');
  const dateStyle = styleOption(hash, 'dateStyle') ?? (timeStyle ? undefined : 'medium');
  const key = `${locale}\0${timeZone}\0${dateStyle}\0${timeStyle}`;
  let f = formatters.get(key);
  if (!f) {
    f = new Intl.DateTimeFormat(locale, { timeZone, dateStyle, timeStyle });
    if (formatters.size >= MAX_FORMATTERS) formatters.clear();
    formatters.set(key, f);
  }
  return f.format(toDate(value));
}

/** Registers the safe helper set on one environment (from `Handlebars.create()`). */
export function registerSafeHelpers(env: HandlebarsEnv): void {
  // Handlebars' `log` writes to the console; templates must not reach the process's output.
  env.registerHelper('log', () => '');
  env.registerHelper('eq', (a: unknown, b: unknown) => a === b);
  env.registerHelper('ne', (a: unknown, b: unknown) => a !== b);
  env.registerHelper('uppercase', (s: unknown) => text(s).toUpperCase());
  env.registerHelper('lowercase', (s: unknown) => text(s).toLowerCase());
  env.registerHelper('default', (v: unknown, fallback: unknown) => (v === null || v === undefined || v === '' ? fallback : v));
  env.registerHelper('formatDate', (value: unknown, options: HelperOptions) => formatDate(value, options?.hash ?? {}));
}
