/**
 * Overview: per-minute counts (accepted, sent, deferred, bounced, …), per-tag progress and the
 * live feed of the tenant's events, pushed by Server-Sent Events (`GET /console/live`) from the
 * process's own read of email.events (`LiveEvents`): each event as a feed line at once, the
 * counts at most every 500 ms. The stream re-checks the session's key on every push and ends
 * when the key is revoked.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { ConsoleDenied } from '../console-errors.js';
import type { ConsoleDeps } from '../console-app.js';
import { userOf } from '../console-app.js';
import { page } from '../console-views.js';
import { pageData } from '../page-data.js';
import { COUNTED_TYPES, type FeedItem, type LiveEvents } from '../live-events.js';

/** Minutes the overview's table shows (the rest is kept for the totals). */
const SHOWN_MINUTES = 10;
const COUNTS_EVERY_MS = 500;
const HEARTBEAT_MS = 15_000;

const TestSend = Type.Object({
  from: Type.String({ minLength: 3, maxLength: 320 }),
  to: Type.String({ minLength: 3, maxLength: 320 }),
  subject: Type.String({ minLength: 1, maxLength: 998 }),
  text: Type.String({ minLength: 1, maxLength: 10_000 }),
  tag: Type.Optional(Type.String({ maxLength: 64 })),
  _csrf: Type.Optional(Type.String()),
});

export function statsView(live: LiveEvents, tenant: string, now: number): Record<string, unknown> {
  const totals = live.totals(tenant);
  return {
    types: COUNTED_TYPES,
    totals: COUNTED_TYPES.map((t) => ({ type: t, n: totals[t] ?? 0 })),
    minutes: live.minutes(tenant, now, SHOWN_MINUTES).map((m) => ({ minute: m.minute, cells: COUNTED_TYPES.map((t) => m.counts[t] ?? 0) })),
    tags: live.tags(tenant).slice(0, 20).map((t) => {
      const accepted = t.counts.accepted ?? 0;
      const done = (t.counts.sent ?? 0) + (t.counts.bounced ?? 0) + (t.counts.expired ?? 0) + (t.counts.failed ?? 0) + (t.counts.suppressed ?? 0);
      return { tag: t.tag, accepted, sent: t.counts.sent ?? 0, deferred: t.counts.deferred ?? 0, bounced: t.counts.bounced ?? 0, done, max: Math.max(accepted, done, 1), lastAt: t.lastAt };
    }),
  };
}

export async function overviewRoutes(app: FastifyInstance, deps: ConsoleDeps, now: () => number): Promise<void> {
  const overview = (req: FastifyRequest, reply: FastifyReply, extra: Record<string, unknown> = {}) => {
    const user = userOf(req);
    return page(reply, 'overview.hbs', pageData(req, deps, 'overview', 'Overview', { ...statsView(deps.live, user.tenant, now()), feed: deps.live.recent(user.tenant), testSend: !!deps.send && user.can('send'), ...extra }));
  };
  app.get<{ Querystring: { sent?: string } }>('/', async (req, reply) => overview(req, reply, /^[0-9a-f-]{36}$/.test(req.query.sent ?? '') ? { sentId: req.query.sent } : {}));

  // A test email, accepted exactly as one item of POST /v1/emails/batch (same checks, same events).
  app.post<{ Body: Static<typeof TestSend> }>('/send', { config: { consoleScope: 'send' }, schema: { body: TestSend } }, async (req, reply) => {
    const user = userOf(req);
    if (!deps.send) throw new ConsoleDenied('test sends are not available here', 404);
    const b = req.body;
    const [result] = await deps.send.acceptBatch(user.tenant, [{ from: b.from.trim(), to: [b.to.trim()], subject: b.subject, text: b.text, ...(b.tag?.trim() ? { tags: [b.tag.trim()] } : {}) }]);
    if (result.status === 202) {
      req.log.info({ messageId: result.id }, 'test email sent from the console');
      return reply.redirect(`/console/?sent=${result.id}`, 303);
    }
    const problem = result.error ? `${result.error.message}${result.error.fields?.length ? `: ${result.error.fields.map((f) => `${f.field} ${f.message}`).join('; ')}` : ''}` : undefined;
    return overview(req, reply.code(result.status), { sendError: problem, form: b });
  });

  const streams = new Set<() => void>();
  // Open streams would keep the server from closing: end them first.
  app.addHook('preClose', async () => {
    for (const close of streams) close();
  });
  app.get('/live', async (req, reply) => live(app, req, reply, deps, now, streams));
}

async function live(app: FastifyInstance, req: FastifyRequest, reply: FastifyReply, deps: ConsoleDeps, now: () => number, streams: Set<() => void>): Promise<void> {
  const user = userOf(req);
  const tenant = user.tenant;
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no', connection: 'keep-alive' });
  res.write(': connected\n\n');
  let countsTimer: NodeJS.Timeout | undefined;
  const send = (event: string, html: string): void => void res.write(`event: ${event}\n${html.split('\n').map((l) => `data: ${l}`).join('\n')}\n\n`);
  const close = (): void => {
    streams.delete(close);
    deps.live.off('event', onEvent);
    clearInterval(heartbeat);
    clearTimeout(countsTimer);
    res.end();
  };
  const stillSignedIn = (): boolean => {
    if (deps.apiKeys.identify(user.key)) return true;
    close();
    return false;
  };
  const onEvent = (eventTenant: string, item: FeedItem): void => {
    if (eventTenant !== tenant || !stillSignedIn()) return;
    void renderFragment(app, 'partials/feed-item.hbs', item).then((html) => send('feed', html));
    countsTimer ??= setTimeout(() => {
      countsTimer = undefined;
      void renderFragment(app, 'partials/stats.hbs', statsView(deps.live, tenant, now())).then((html) => send('counts', html));
    }, COUNTS_EVERY_MS);
  };
  const heartbeat = setInterval(() => {
    if (stillSignedIn()) res.write(': keep-alive\n\n');
  }, HEARTBEAT_MS);
  deps.live.on('event', onEvent);
  streams.add(close);
  req.raw.once('close', close);
}

async function renderFragment(app: FastifyInstance, view: string, data: object): Promise<string> {
  return (await app.view(view, data as Record<string, unknown>)) as string;
}
