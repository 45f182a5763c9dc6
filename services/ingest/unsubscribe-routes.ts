/**
 * The unsubscribe endpoint of the send API, `/u/<token>` — the URL in every copy's
 * `List-Unsubscribe` (services/renderer/feedback-copies.ts). No API key: the signed token
 * (purpose `unsubscribe`) names the tenant, message, recipient and list. Its own rate limit per
 * client IP (`ingest.unsubscribe`).
 *
 * - `GET` answers a small confirmation page with a button. It never unsubscribes: mail
 *   scanners and link previews follow GETs.
 * - `POST` with `List-Unsubscribe=One-Click` (RFC 8058, sent by mailbox providers as
 *   multipart/form-data or application/x-www-form-urlencoded) emits `unsubscribed` via
 *   `one-click`; the page's own button (`unsubscribe=confirm`) emits it via `link`. The event
 *   is all this does: the suppression feeder turns it into a suppression scoped to the tenant
 *   (and the list, when the message named one). Every POST answers the same 200 page, so a
 *   repeated POST is harmless; each emits its event (the suppression is keyed, so it is written
 *   once in effect).
 * - A malformed, tampered or unknown token is a 404 page — never a redirect.
 *
 * Pages are HTML with a strict Content-Security-Policy, `no-store` and `noindex`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import { Busboy, type BusboyHeaders } from '@fastify/busboy';
import type { EventPublisher } from '../../shared/events.js';
import type { FeedbackKeyring, FeedbackRef } from '../../shared/feedback/feedback-token.js';
import { RequestRejected, toHttpError } from '../../shared/http/errors.js';

export interface UnsubscribeRoutesDeps {
  keyring: FeedbackKeyring;
  events: Pick<EventPublisher, 'publish'>;
  /** Requests per client IP per window (0: no limit). */
  rateLimitMax: number;
  rateLimitWindowMs: number;
  /** How long a POST waits for the broker to take its event before answering 503. */
  publishTimeoutMs: number;
}

/** The form field of the page's own button. */
export const CONFIRM_FIELD = 'unsubscribe';
/** A form body is one or two short fields: anything larger is not one. */
const MAX_FORM_BYTES = 4096;
const FORM_TYPES = ['application/x-www-form-urlencoded', 'multipart/form-data'];

const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-robots-tag': 'noindex',
  'referrer-policy': 'no-referrer',
};

/** Text for HTML element content and double-quoted attribute values. */
function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;line-height:1.5}button{font-size:1rem;padding:.6rem 1.2rem;cursor:pointer}</style>
</head>
<body>
<main>
<h1>${escapeHtml(title)}</h1>
${body}
</main>
</body>
</html>
`;
}

/** What the recipient is unsubscribing from: the list when the message named one, else the sender (tenant). */
function scopeOf(ref: FeedbackRef): string {
  return ref.listId ? `the list “${ref.listId}”` : `mail from ${ref.tenant}`;
}

function send(reply: FastifyReply, status: number, html: string): FastifyReply {
  return reply.code(status).headers(PAGE_HEADERS).send(html);
}

const notFound = (reply: FastifyReply) =>
  send(reply, 404, page('Link not valid', '<p>This unsubscribe link is not valid. If you copied it, check that it is complete, or use the unsubscribe link of a more recent message.</p>'));

/** Parses both form encodings (body read by Fastify, bounded: 413 above) with busboy into the first value of each field. */
function formParser(req: FastifyRequest, body: Buffer, done: (err: Error | null, body?: Record<string, string>) => void): void {
  // No prototype: a field named __proto__ or constructor is just a field.
  const fields: Record<string, string> = Object.create(null);
  let finished = false;
  const finish = (err: Error | null) => {
    if (finished) return;
    finished = true;
    done(err, err ? undefined : fields);
  };
  const bad = (cause?: unknown) => finish(Object.assign(new Error('not a form body', { cause }), { statusCode: 400 }));
  let parser;
  try {
    parser = new Busboy({ headers: req.headers as BusboyHeaders, limits: { fields: 10, fieldSize: 256, fieldNameSize: 64, files: 0, parts: 10 } });
  } catch (err) {
    return bad(err);
  }
  parser.on('field', (name: string, value: string, nameTruncated: boolean, valueTruncated: boolean) => {
    if (nameTruncated || valueTruncated) bad();
    else if (!(name in fields)) fields[name] = value;
  });
  parser.on('file', (_name: string, stream: NodeJS.ReadableStream) => {
    stream.resume();
    bad();
  });
  parser.on('finish', () => finish(null));
  parser.on('error', (err: Error) => bad(err));
  parser.end(body);
}

/** Registers `/u/*` on its own encapsulated scope: no API key, its own body parsers, error pages and rate limit. */
export async function unsubscribeRoutes(app: FastifyInstance, deps: UnsubscribeRoutesDeps): Promise<void> {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(FORM_TYPES, { parseAs: 'buffer', bodyLimit: MAX_FORM_BYTES }, formParser);
  // Every refusal as a page, with the status (and Retry-After) the API's one mapping gives it.
  app.setErrorHandler(async (err, req, reply) => {
    const h = toHttpError(err);
    const status = h.status >= 500 ? 503 : h.status;
    if (status === 503) req.log.error({ err }, 'unsubscribe failed');
    const text = status === 429 ? 'Too many requests from your network. Please try again in a minute.' : status === 503 ? 'Something went wrong on our side. Please try again in a minute.' : 'This request could not be understood.';
    return send(reply.headers(h.headers), status, page(status === 503 || status === 429 ? 'Please try again' : 'Bad request', `<p>${escapeHtml(text)}</p>`));
  });
  if (deps.rateLimitMax > 0) {
    await app.register(rateLimit, {
      max: deps.rateLimitMax,
      timeWindow: deps.rateLimitWindowMs,
      keyGenerator: (req) => req.ip,
      errorResponseBuilder: (_req, ctx) => new RequestRejected('RATE_LIMITED', `rate limit of ${ctx.max} requests exceeded`, [], Math.ceil(ctx.ttl / 1000)),
    });
  }
  // A wildcard: a token may be longer than a path parameter's length limit.
  app.get<{ Params: { '*': string } }>('/u/*', async (req, reply) => {
    const ref = deps.keyring.verify(req.params['*'], 'unsubscribe');
    if (!ref) return notFound(reply);
    return send(
      reply,
      200,
      page(
        'Unsubscribe',
        `<p>Unsubscribe <strong>${escapeHtml(ref.recipient)}</strong> from ${escapeHtml(scopeOf(ref))}?</p>
<form method="post">
<button type="submit" name="${CONFIRM_FIELD}" value="confirm">Unsubscribe</button>
</form>`,
      ),
    );
  });
  app.post<{ Params: { '*': string }; Body: Record<string, string> | undefined }>('/u/*', async (req, reply) => {
    const ref = deps.keyring.verify(req.params['*'], 'unsubscribe');
    if (!ref) return notFound(reply);
    const body = req.body ?? {};
    const via = body['List-Unsubscribe'] === 'One-Click' ? 'one-click' : body[CONFIRM_FIELD] === 'confirm' ? 'link' : undefined;
    if (!via) throw new RequestRejected('BAD_REQUEST', 'neither List-Unsubscribe=One-Click nor the confirmation button');
    await withTimeout(
      deps.events.publish({
        type: 'unsubscribed',
        messageId: ref.messageId,
        tenant: ref.tenant,
        recipients: [ref.recipient],
        via,
        ...(ref.listId ? { listId: ref.listId } : {}),
        ...(ref.fromDomain ? { fromDomain: ref.fromDomain } : {}),
      }),
      deps.publishTimeoutMs,
    );
    req.log.info({ messageId: ref.messageId, tenant: ref.tenant, via, listId: ref.listId }, 'unsubscribed');
    return send(reply, 200, page('Unsubscribed', `<p><strong>${escapeHtml(ref.recipient)}</strong> is unsubscribed from ${escapeHtml(scopeOf(ref))}.</p>`));
  });
}

/** Rejects (503 page) when the broker has not taken the event in time; the POST can be repeated. */
async function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the event was not acknowledged within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
