/**
 * Errors on console pages: one HTML answer for all of them, with the status and message the
 * API's own mapping (`toHttpError`) gives, so a console user reads the same words an API
 * client would. An htmx request gets the message alone (it is swapped into the page).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { PermanentError } from '../../shared/errors.js';
import { toHttpError } from '../../shared/http/errors.js';
import { page } from './console-views.js';

/** A console request refused: not signed in (401), a missing scope (403), no such page (404). */
export class ConsoleDenied extends PermanentError {
  constructor(
    message: string,
    readonly status = 401,
  ) {
    super('CONSOLE_DENIED', message);
  }
}

/** The error as a page (in the layout, with the navigation when signed in) or, for htmx, a fragment. */
export async function renderError(err: unknown, req: FastifyRequest, reply: FastifyReply, layoutData: (req: FastifyRequest) => Record<string, unknown>): Promise<FastifyReply> {
  let status: number;
  let message: string;
  let fields: Array<{ field: string; message: string }> = [];
  if (err instanceof ConsoleDenied) {
    status = err.status;
    message = err.message;
  } else if ((err as { code?: string }).code?.startsWith('FST_CSRF_')) {
    status = 403;
    message = 'the form has expired or did not come from this console; reload the page and try again';
  } else {
    const h = toHttpError(err);
    status = h.status;
    message = h.body.error.message;
    fields = h.body.error.fields ?? [];
    if (status === 500) req.log.error({ err, tenant: req.consoleUser?.tenant }, 'console request failed');
  }
  reply.code(status).header('cache-control', 'no-store');
  if (req.headers['hx-request']) return reply.type('text/html').view('error-fragment.hbs', { message, fields });
  return page(reply, 'error.hbs', { ...(req.consoleUser ? layoutData(req) : {}), title: `Error ${status}`, status, message, fields });
}
