/**
 * The scheduler's internal cancellation API, which ingest forwards `DELETE /v1/emails/:id` to
 * (ingest authenticates the caller and passes the tenant in `x-postline-tenant`; this port is
 * cluster-internal like the ops port).
 *
 * - `DELETE /internal/v1/scheduled/:id`: decided by this replica's book — 200 cancelled, 409
 *   too late (being released or released), 404 NOT_SCHEDULED_HERE (another replica's, a
 *   retry, or unknown: ingest then asks the timeline).
 * - `PUT /internal/v1/cancellations/:id`: records a cancellation for the replicas that hold the
 *   message (a scheduled request elsewhere, or pending retries); 202.
 */
import Fastify, { LogController, type FastifyInstance, type FastifyBaseLogger } from 'fastify';
import type { Logger } from 'pino';
import { CANCELLATION_VERSION, type Cancellation } from '../../shared/contracts/cancellation.js';
import { RequestRejected, toHttpError } from '../../shared/http/errors.js';
import type { ScheduledLane } from './scheduled-lane.js';

export const TENANT_HEADER = 'x-postline-tenant';

export interface CancelApiDeps {
  lane: ScheduledLane;
  /** Writes a cancellation durably (email.cancellations) and applies it here. */
  record(c: Cancellation): Promise<void>;
  logger: Logger;
  now?: () => Date;
}

export function buildCancelApi(deps: CancelApiDeps): FastifyInstance {
  const app = Fastify({ loggerInstance: deps.logger as FastifyBaseLogger, logController: new LogController({ disableRequestLogging: true }) });
  const now = deps.now ?? (() => new Date());
  app.setErrorHandler(async (err, _req, reply) => {
    const h = toHttpError(err);
    if (h.status === 500) deps.logger.error({ err }, 'cancellation failed');
    return reply.code(h.status).headers(h.headers).send(h.body);
  });
  const tenantOf = (headers: Record<string, unknown>): string => {
    const t = headers[TENANT_HEADER];
    if (typeof t !== 'string' || t.length === 0) throw new RequestRejected('UNAUTHORIZED', `missing ${TENANT_HEADER}`);
    return t;
  };
  const cancellation = (id: string, tenant: string): Cancellation => ({ schemaVersion: CANCELLATION_VERSION, messageId: id, tenant, at: now().toISOString() });

  app.delete<{ Params: { id: string } }>('/internal/v1/scheduled/:id', async (req, reply) => {
    const tenant = tenantOf(req.headers);
    const { id } = req.params;
    const outcome = await deps.lane.cancel(id, tenant, () => deps.record(cancellation(id, tenant)));
    switch (outcome.kind) {
      case 'cancelled':
        return reply.code(200).send({ id, status: 'cancelled', cancelled: ['scheduled'] });
      case 'too-late':
        return reply.code(409).send({ error: { code: 'TOO_LATE', message: 'the message was already released for sending' } });
      case 'unknown':
        return reply.code(404).send({ error: { code: 'NOT_SCHEDULED_HERE', message: 'no scheduled message with this id on this scheduler' } });
    }
  });

  app.put<{ Params: { id: string } }>('/internal/v1/cancellations/:id', async (req, reply) => {
    const tenant = tenantOf(req.headers);
    await deps.record(cancellation(req.params.id, tenant));
    deps.logger.info({ messageId: req.params.id, tenant }, 'cancellation recorded');
    return reply.code(202).send({ id: req.params.id, status: 'cancelling' });
  });
  return app;
}
