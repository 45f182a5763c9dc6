/**
 * The web console, a Fastify plugin the ingest app registers under `/console`: server-rendered
 * HTML (`@fastify/view` + Handlebars, htmx for the live parts; every asset local), signed in
 * with an API key exchanged for a sealed session cookie (see console-session.ts), CSRF-checked on
 * every POST, a strict Content-Security-Policy (no inline script). What a page shows follows the
 * key's scopes: `read` to see, `send` to change (templates, suppressions, replays, webhooks),
 * `admin` for every tenant's keys, switching tenant, and the installation's pools and sites.
 */
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import secureSession from '@fastify/secure-session';
import csrfProtection from '@fastify/csrf-protection';
import formbody from '@fastify/formbody';
import fastifyStatic from '@fastify/static';
import helmet from '@fastify/helmet';
import view from '@fastify/view';
import type { PostlineConfig } from '../../shared/config.js';
import type { ApiKeyStore, Identity } from '../../shared/http/api-keys.js';
import type { ApiScope } from '../../shared/contracts/admin-record.js';
import type { AdminDirectory } from '../../shared/admin/admin-directory.js';
import type { TemplateRepository } from '../../shared/templates/template-repository.js';
import type { SuppressionBook } from '../../shared/suppressions/suppression-book.js';
import type { DeadLetterRoutesDeps } from '../../shared/dead-letters/dead-letter-routes.js';
import { isConsoleSession, sessionStatus, type ConsoleSession } from './console-session.js';
import { consoleViews } from './console-views.js';
import { pageData } from './page-data.js';
import { renderError, ConsoleDenied } from './console-errors.js';
import type { LiveEvents } from './live-events.js';
import type { OpsHealth } from './ops-health.js';
import type { WebhookRoutesDeps } from '../ingest/webhook-routes.js';
import type { EventPublisher } from '../../shared/events.js';
import type { Acceptor } from '../ingest/acceptor.js';
import { overviewRoutes } from './pages/overview-page.js';
import { messageRoutes } from './pages/messages-page.js';
import { templateRoutes } from './pages/templates-page.js';
import { deadLetterRoutes } from './pages/dead-letters-page.js';
import { keyRoutes } from './pages/keys-page.js';
import { suppressionRoutes } from './pages/suppressions-page.js';
import { signInRoutes } from './pages/sign-in-page.js';
import { webhookRoutes } from './pages/webhooks-page.js';
import { healthRoutes } from './pages/health-page.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

export interface ConsoleDeps {
  config: PostlineConfig['console'];
  apiKeys: ApiKeyStore;
  /** Keys, tenants and sender domains (`email.admin`). */
  directory: AdminDirectory;
  /** `ingest.senderDomains`: listed on the keys page, changed only in configuration. */
  configuredDomains?: Readonly<Record<string, readonly string[]>>;
  templates: TemplateRepository;
  suppressions: SuppressionBook;
  deadLetters: DeadLetterRoutesDeps;
  live: LiveEvents;
  /** Pauses, site back-off and deferral rates from email.events (the pools and sites page). */
  health: OpsHealth;
  /** The `/v1/webhooks` routes' own pieces (endpoint book, SSRF guard, delivery log, replay); absent: no webhooks page. */
  webhooks?: WebhookRoutesDeps;
  /** Publishes operational events: the `resumed` of a source, pool or sending domain, and a webhook endpoint's `enabled`. Absent: no resume buttons. */
  events?: Pick<EventPublisher, 'publish'>;
  /** Session sealing keys (console-session.ts `sessionKeysFrom`): the first seals, all open. */
  sessionKeys: Buffer[];
  /** Test sends from the overview (`send` scope), checked and accepted exactly as `POST /v1/emails/batch` items; absent: no form. */
  send?: Pick<Acceptor, 'acceptBatch'>;
  /** The analytics read API (`ingest.readApiUrl`); empty: the Messages page says it is not configured. */
  readApiUrl: string;
  now?: () => number;
}

/** Who is signed in, set on every authenticated console request. */
export interface ConsoleUser {
  who: Identity;
  /** The tenant the pages show: the key's own, or the one an admin switched to. */
  tenant: string;
  key: string;
  csrf: string;
  can(scope: ApiScope): boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    consoleUser?: ConsoleUser;
  }
  interface FastifyContextConfig {
    /** The scope a console page needs (default read; a list: any of them); 'public' for sign-in and assets. */
    consoleScope?: ApiScope | ApiScope[] | 'public';
  }
}

declare module '@fastify/secure-session' {
  interface SessionData {
    user: ConsoleSession;
  }
}

/** The signed-in user of a console route (set by the authentication hook). */
export function userOf(req: FastifyRequest): ConsoleUser {
  if (!req.consoleUser) throw new ConsoleDenied('not signed in');
  return req.consoleUser;
}

/** Registers the console on `app` (mount it with `{ prefix: '/console' }`). */
export async function registerConsole(app: FastifyInstance, deps: ConsoleDeps): Promise<void> {
  const now = deps.now ?? Date.now;
  await app.register(helmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        // Inline styles for email previews (sandboxed frames) only; no script runs inline.
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        frameSrc: ["'self'"],
        frameAncestors: ["'none'"],
        formAction: ["'self'"],
        baseUri: ["'none'"],
        objectSrc: ["'none'"],
      },
    },
    // Same-origin pages only; the console is never framed.
    crossOriginEmbedderPolicy: false,
  });
  await app.register(formbody);
  await app.register(secureSession, {
    key: deps.sessionKeys,
    cookieName: 'postline_console',
    expiry: Math.ceil(deps.config.absoluteTimeoutMs / 1000),
    cookie: { path: '/console', httpOnly: true, sameSite: 'strict', secure: 'auto' },
  });
  await app.register(csrfProtection, { sessionPlugin: '@fastify/secure-session' });
  await app.register(view, consoleViews(path.join(here, 'views')));
  app.addHook('onRoute', (route) => {
    if (route.url.includes('/assets/')) route.config = { ...(route.config as object), consoleScope: 'public' };
  });
  await app.register(fastifyStatic, {
    root: [path.join(here, 'assets'), path.dirname(require.resolve('htmx.org/dist/htmx.min.js')), path.dirname(require.resolve('htmx-ext-sse/dist/sse.min.js'))],
    prefix: '/assets/',
    decorateReply: false,
    index: false,
    list: false,
    maxAge: 3_600_000,
    allowedPath: (p) => /^\/(console\.css|htmx\.min\.js|sse\.min\.js)$/.test(p),
  });
  const layoutData = (req: FastifyRequest) => pageData(req, deps, '', 'Error');
  app.setErrorHandler(async (err, req, reply) => renderError(err, req, reply, layoutData));
  app.setNotFoundHandler(async (req, reply) => renderError(new ConsoleDenied('no such page', 404), req, reply, layoutData));
  app.addHook('onRequest', async (req, reply) => authenticate(req, reply, deps, now));
  // Pages hold tenant data: never cached (the static assets set their own cache-control).
  app.addHook('onRequest', async (req, reply) => void (req.url.startsWith('/console/assets/') || reply.header('cache-control', 'no-store')));
  // After the body is parsed: a form's token is its `_csrf` field, htmx sends the X-CSRF-Token header.
  app.addHook('preValidation', async (req, reply) => {
    if (req.method === 'POST') await new Promise<void>((resolve, reject) => app.csrfProtection(req, reply, (err?: unknown) => (err ? reject(err) : resolve())));
  });

  await signInRoutes(app, deps, now);
  await overviewRoutes(app, deps, now);
  await messageRoutes(app, deps);
  await templateRoutes(app, deps);
  await deadLetterRoutes(app, deps);
  await keyRoutes(app, deps);
  await suppressionRoutes(app, deps);
  await webhookRoutes(app, deps);
  await healthRoutes(app, deps, now);
}

/**
 * Every non-public console request: a live session whose key still authenticates, and the scope
 * the route needs. Without one, pages redirect to sign-in (htmx requests get HX-Redirect) and
 * other requests a 401.
 */
async function authenticate(req: FastifyRequest, reply: FastifyReply, deps: ConsoleDeps, now: () => number): Promise<void> {
  const scope = req.routeOptions.config?.consoleScope ?? 'read';
  if (scope === 'public') return;
  const s = req.session.get('user');
  const t = now();
  let reason = '';
  if (!isConsoleSession(s)) reason = '';
  else if (sessionStatus(s, t, deps.config) !== 'live') reason = 'expired';
  else {
    const who = deps.apiKeys.identify(s.key);
    if (!who) reason = 'revoked';
    else {
      const admin = who.scopes.includes('admin');
      const tenant = admin && s.tenant ? s.tenant : who.tenant;
      const user: ConsoleUser = { who, tenant, key: s.key, csrf: '', can: (sc) => who.scopes.includes(sc) };
      req.consoleUser = user;
      req.log = req.log.child({ tenant, ...(who.keyId ? { keyId: who.keyId } : {}) });
      // Only the time moves: written back at most every 10 s, so most requests do not re-seal the cookie.
      if (t - s.seenAt > 10_000) req.session.set('user', { ...s, seenAt: t });
      user.csrf = reply.generateCsrf();
      const anyOf = Array.isArray(scope) ? scope : [scope];
      if (!anyOf.some((sc) => user.can(sc))) throw new ConsoleDenied(`this API key does not have the "${anyOf.join('" or "')}" scope`, 403);
      return;
    }
  }
  if (reason) req.session.delete();
  const to = `/console/login${reason ? `?ended=${reason}` : ''}`;
  if (req.headers['hx-request']) {
    reply.header('hx-redirect', to);
    return reply.code(401).send();
  }
  if (req.method === 'GET' && !req.headers.accept?.includes('text/event-stream')) return reply.redirect(to, 303);
  return reply.code(401).send({ error: { code: 'UNAUTHORIZED', message: 'sign in to the console' } });
}
