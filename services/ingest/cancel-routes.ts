/**
 * `DELETE /v1/emails/:id`: cancels a message not yet handed on for sending.
 *
 * The scheduler owns the decision. Ingest forwards to it (`schedule.schedulerUrl`) with the
 * authenticated tenant; the replica holding the scheduled request decides between release
 * rounds, so the message is either cancelled (200, never released) or too late (409, released)
 * — never both. When that replica does not hold it (another replica's partition, pending
 * retries, or no such message), the timeline (the read API, `ingest.readApiUrl`) says what the
 * message is: unknown → 404; scheduled, or waiting for a retry → the cancellation is recorded on
 * `email.cancellations` and applied by the scheduler replica that would release or move it back
 * (202; the outcome is a `cancelled` event, or `sent` if it was already on its way); anything
 * else (rendering, dispatched, delivered, failed) → 409.
 */
import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import { RequestRejected, Unavailable } from '../../shared/http/errors.js';

/** The header carrying the authenticated tenant to the scheduler's internal API. */
const TENANT_HEADER = 'x-postline-tenant';

export interface CancelRoutesDeps {
  /** Base URL of the scheduler's cancellation API; empty: 503. */
  schedulerUrl: string;
  /** Base URL of the read API (timelines); empty: a message the scheduler does not hold is 404. */
  readApiUrl: string;
  timeoutMs: number;
}

const Params = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128, pattern: '^[^\\r\\n\\u0000/]+$' }) });

interface TimelineView {
  timeline?: Array<{ type?: string }>;
  recipients?: Array<{ state?: string }>;
}

/** What the timeline says can still be cancelled (pure). */
export function cancellableFromTimeline(view: TimelineView): 'scheduled' | 'retries' | 'cancelled' | undefined {
  const types = new Set((view.timeline ?? []).map((s) => s.type));
  if (types.has('cancelled')) return 'cancelled';
  if (types.has('scheduled') && !types.has('rendered')) return 'scheduled';
  if ((view.recipients ?? []).some((r) => r.state === 'deferred')) return 'retries';
  return undefined;
}

export async function cancelRoutes(v1: FastifyInstance, deps: CancelRoutesDeps): Promise<void> {
  const call = async (url: string, init: RequestInit): Promise<Response> => {
    try {
      return await fetch(url, { ...init, signal: AbortSignal.timeout(deps.timeoutMs) });
    } catch (err) {
      throw new Unavailable('the scheduler did not answer; retry', err);
    }
  };

  v1.delete<{ Params: { id: string } }>('/v1/emails/:id', { schema: { params: Params } }, async (req, reply) => {
    if (!deps.schedulerUrl) throw new Unavailable('cancellation is not configured here (schedule.schedulerUrl)');
    const { id } = req.params;
    const headers = { [TENANT_HEADER]: req.tenant };
    const here = await call(`${deps.schedulerUrl}/internal/v1/scheduled/${encodeURIComponent(id)}`, { method: 'DELETE', headers });
    if (here.status === 200) {
      req.log.info({ messageId: id }, 'scheduled message cancelled');
      return reply.code(200).send(await here.json());
    }
    if (here.status === 409) throw new RequestRejected('TOO_LATE', 'too late to cancel: the message was already handed on for sending');
    if (here.status !== 404) throw new Unavailable(`the scheduler answered ${here.status}; retry`);
    const pending = deps.readApiUrl ? await pendingOnTimeline(call, deps.readApiUrl, id, req.headers.authorization ?? '') : 'unknown';
    if (pending === 'unknown') throw new RequestRejected('NOT_FOUND', 'no message with this id');
    if (pending === 'none') throw new RequestRejected('TOO_LATE', 'too late to cancel: the message is being sent or is done');
    if (pending === 'cancelled') throw new RequestRejected('TOO_LATE', 'the message was already cancelled');
    const recorded = await call(`${deps.schedulerUrl}/internal/v1/cancellations/${encodeURIComponent(id)}`, { method: 'PUT', headers });
    if (recorded.status !== 202) throw new Unavailable(`the scheduler answered ${recorded.status}; retry`);
    req.log.info({ messageId: id, pending }, 'cancellation recorded');
    return reply.code(202).send({ id, status: 'cancelling', cancelling: [pending] });
  });
}

async function pendingOnTimeline(
  call: (url: string, init: RequestInit) => Promise<Response>,
  readApiUrl: string,
  id: string,
  authorization: string,
): Promise<'unknown' | 'none' | 'scheduled' | 'retries' | 'cancelled'> {
  const res = await call(`${readApiUrl}/v1/messages/${encodeURIComponent(id)}`, { headers: { authorization } });
  if (res.status === 404) return 'unknown';
  if (res.status !== 200) throw new Unavailable(`the read API answered ${res.status}; retry`);
  return cancellableFromTimeline((await res.json()) as TimelineView) ?? 'none';
}
