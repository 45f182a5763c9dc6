/**
 * The tracker as a Fastify app: `GET /o/<token>.gif` (the open pixel: a 43-byte GIF, never
 * cached) and `GET /c/<token>?u=<url>` (302 to the URL the token was signed for). A token that
 * does not verify — malformed, tampered with, signed by an unknown key, or a click token with
 * another URL — answers 404 with a plain page: never a redirect to an unsigned URL. HEAD works
 * on both (Fastify adds it) and counts as a machine hit.
 *
 * Every verified hit becomes an `opened` / `clicked` event pushed onto the EventBuffer, which
 * never waits for Kafka. `buildTrackerApp` never listens; `main.ts` does, tests `inject`.
 * Emits 'hit' (kind, machine: boolean) and 'refused' (kind) on `deps.observer` for metrics.
 */
import type { EventEmitter } from 'node:events';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { FeedbackKeyring } from '../../shared/feedback/feedback-token.js';
import type { EventInput } from '../../shared/events.js';
import { verifyClick, verifyOpen, type TrackedHit } from '../../shared/tracking/tracking-links.js';
import { detectMachine, isBotUserAgent, type MachineRules } from '../../shared/tracking/machine-detection.js';
import { truncateIp } from '../../shared/tracking/client-ip.js';
import type { EngagementMemory } from './engagement-memory.js';
import { memoized } from './lookup-memo.js';

/** A transparent 1×1 GIF89a, 43 bytes. */
export const PIXEL_GIF = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==', 'base64');
const NOT_FOUND_PAGE = 'Not found: this link is not valid.\n';
const MAX_USER_AGENT = 256;
/** Longest token accepted (the keyring refuses longer ones anyway). */
const MAX_TOKEN = 1024;
/** Distinct user agents and client addresses whose lookups are remembered. */
const MEMO_ENTRIES = 10_000;

export interface TrackerAppDeps {
  keyring: FeedbackKeyring;
  buffer: { push(event: EventInput): boolean };
  memory: EngagementMemory;
  rules: MachineRules;
  logger: Logger;
  /** Proxies trusted for X-Forwarded-For (0: the TCP peer). */
  trustProxyHops?: number;
  observer?: EventEmitter;
  /** Clock (ms); tests pass their own. */
  now?: () => number;
}

/** The event of one verified hit. Pure. */
export function engagementEvent(
  hit: TrackedHit,
  verdict: { machine: boolean; reason?: string },
  first: boolean,
  client: { ip: string; userAgent: string },
  atMs: number,
  truncate: (ip: string) => string = truncateIp,
): EventInput {
  const ip = truncate(client.ip);
  const userAgent = client.userAgent.slice(0, MAX_USER_AGENT);
  return {
    type: hit.kind === 'open' ? 'opened' : 'clicked',
    messageId: hit.messageId,
    tenant: hit.tenant,
    recipients: [hit.recipient],
    at: new Date(atMs).toISOString(),
    engagement: {
      first,
      machine: verdict.machine,
      ...(verdict.reason ? { machineReason: verdict.reason } : {}),
      ...(hit.kind === 'click' ? { linkIndex: hit.linkIndex, url: hit.url } : {}),
      ...(ip ? { ip } : {}),
      ...(userAgent ? { userAgent } : {}),
    },
  };
}

function locationOf(url: string): string | undefined {
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'https:' || parsed.protocol === 'http:' ? parsed.href : undefined;
  } catch {
    return undefined;
  }
}

export function buildTrackerApp(deps: TrackerAppDeps): FastifyInstance {
  const hops = deps.trustProxyHops ?? 0;
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    routerOptions: { maxParamLength: MAX_TOKEN + 8 },
    trustProxy: hops > 0 ? (_address: string, hop: number) => hop < hops : false,
    // No request logging, so no per-request child logger either: pino's child() re-applies the
    // redaction paths on every call (a measurable share of a hit). Errors log on the app's logger.
    childLoggerFactory: (logger) => logger,
  });
  const now = deps.now ?? Date.now;
  const rules: MachineRules = { ...deps.rules, isBot: memoized(deps.rules.isBot ?? isBotUserAgent, MEMO_ENTRIES) };
  const truncate = memoized(truncateIp, MEMO_ENTRIES);

  const notFound = (reply: FastifyReply, kind: 'open' | 'click') => {
    deps.observer?.emit('refused', kind);
    return reply.code(404).header('content-type', 'text/plain; charset=utf-8').header('cache-control', 'no-store').send(NOT_FOUND_PAGE);
  };

  // Counting a hit never costs the reader the pixel or the redirect: a failure here is logged.
  const record = (hit: TrackedHit, req: FastifyRequest) => {
    try {
      recordHit(hit, req);
    } catch (err) {
      deps.logger.error({ err, messageId: hit.messageId, kind: hit.kind }, 'tracked hit could not be recorded');
    }
  };
  const recordHit = (hit: TrackedHit, req: FastifyRequest) => {
    const atMs = now();
    const userAgent = req.headers['user-agent'] ?? '';
    const previousClick = hit.kind === 'click' ? deps.memory.click(hit, hit.linkIndex, atMs) : undefined;
    const verdict = detectMachine({ kind: hit.kind, method: req.method, userAgent, ip: req.ip, issuedAt: hit.issuedAt, nowMs: atMs, linkIndex: hit.linkIndex, previousClick }, rules);
    const first = deps.memory.first(hit, hit.kind, hit.linkIndex);
    deps.buffer.push(engagementEvent(hit, verdict, first, { ip: req.ip, userAgent }, atMs, truncate));
    deps.observer?.emit('hit', hit.kind, verdict.machine);
  };

  app.get<{ Params: { file: string } }>('/o/:file', (req, reply) => {
    const { file } = req.params;
    const hit = file.endsWith('.gif') ? verifyOpen(deps.keyring, file.slice(0, -4)) : undefined;
    if (!hit) return notFound(reply, 'open');
    record(hit, req);
    return reply
      .header('content-type', 'image/gif')
      .header('cache-control', 'no-store, no-cache, must-revalidate, private')
      .header('pragma', 'no-cache')
      .header('expires', '0')
      .send(PIXEL_GIF);
  });

  app.get<{ Params: { token: string }; Querystring: { u?: string | string[] } }>('/c/:token', (req, reply) => {
    const u = req.query.u;
    // A repeated u is ambiguous: refuse rather than guess which one was signed.
    const hit = typeof u === 'string' ? verifyClick(deps.keyring, req.params.token, u) : undefined;
    // WHATWG serialisation: percent-encodes what a header may not carry (non-ASCII).
    const location = hit?.url ? locationOf(hit.url) : undefined;
    if (!hit || !location) return notFound(reply, 'click');
    record(hit, req);
    return reply.code(302).header('location', location).header('cache-control', 'no-store').header('referrer-policy', 'no-referrer').send();
  });

  // Request logging is off (see above), and with it Fastify's own logging of handler errors.
  app.setErrorHandler((err: Error & { statusCode?: number }, req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) deps.logger.error({ err, route: req.routeOptions.url }, 'tracker request failed');
    return reply.code(status).header('content-type', 'text/plain; charset=utf-8').header('cache-control', 'no-store').send(status === 500 ? 'Something went wrong.\n' : 'Bad request.\n');
  });
  app.setNotFoundHandler((_req, reply) => reply.code(404).header('content-type', 'text/plain; charset=utf-8').send(NOT_FOUND_PAGE));
  return app;
}
