/**
 * The console's Handlebars environment for `@fastify/view`: its own instance (the renderer's
 * templates never see these helpers), one layout, partials, and small formatting helpers.
 * Every value is HTML-escaped by `{{ }}`; nothing user-given is ever rendered with `{{{ }}}`.
 */
import fs from 'node:fs';
import path from 'node:path';
import Handlebars from 'handlebars';
import type { FastifyViewOptions } from '@fastify/view';

export function consoleHandlebars(): typeof Handlebars {
  const hb = Handlebars.create();
  hb.registerHelper('eq', (a: unknown, b: unknown) => a === b);
  hb.registerHelper('includes', (list: unknown, x: unknown) => Array.isArray(list) && list.includes(x));
  hb.registerHelper('join', (list: unknown, sep: unknown) => (Array.isArray(list) ? list.join(typeof sep === 'string' ? sep : ', ') : ''));
  hb.registerHelper('fmtTime', (iso: unknown) => (typeof iso === 'string' && iso ? iso.replace('T', ' ').replace(/\.\d+Z$|Z$/, ' UTC') : ''));
  hb.registerHelper('fmtClock', (iso: unknown) => (typeof iso === 'string' ? (/T(\d\d:\d\d:\d\d)/.exec(iso)?.[1] ?? iso) : ''));
  hb.registerHelper('fmtMinute', (iso: unknown) => (typeof iso === 'string' ? (/T(\d\d:\d\d)/.exec(iso)?.[1] ?? iso) : ''));
  hb.registerHelper('fmtMs', (v: unknown) => (typeof v === 'number' ? (v >= 1000 ? `${(v / 1000).toFixed(v >= 10_000 ? 0 : 1)} s` : `${Math.round(v)} ms`) : ''));
  hb.registerHelper('json', (v: unknown) => JSON.stringify(v, null, 2));
  hb.registerHelper('pick', (obj: unknown, key: unknown) => (obj && typeof obj === 'object' && typeof key === 'string' ? (obj as Record<string, unknown>)[key] : undefined));
  return hb;
}

/** `@fastify/view` options: the views directory and every `partials/*.hbs` (pages pass the layout, fragments do not). */
export function consoleViews(root: string): FastifyViewOptions {
  const partialsDir = path.join(root, 'partials');
  const partials = Object.fromEntries(
    fs
      .readdirSync(partialsDir)
      .filter((f) => f.endsWith('.hbs'))
      .map((f) => [f.slice(0, -4), path.join('partials', f)]),
  );
  return { engine: { handlebars: consoleHandlebars() }, root, options: { partials }, production: true };
}

/** Renders a full page (in the layout). */
export function page(reply: import('fastify').FastifyReply, view: string, data: Record<string, unknown>): import('fastify').FastifyReply {
  return reply.view(view, data, { layout: 'layout.hbs' });
}
