/**
 * Operations endpoints for auto-pause on the dispatcher's ops server:
 *   GET  /v1/sources                    paused addresses and pools, warm-up usage
 *   POST /v1/sources/:address/resume    puts a paused address back in rotation (404: not paused)
 *   POST /v1/pools/:pool/resume         the same for a pool
 *   GET  /v1/senders[?tenant=T]         paused sending domains (of tenant T only, when given)
 *   POST /v1/senders/:tenant/:domain/resume   resumes a tenant's sending domain (tenant URL-encoded: acme%2Feu)
 * Pauses and resumes are events on email.events that every replica applies: a resume on any
 * replica's ops port holds for all of them.
 */
import type { FastifyInstance } from 'fastify';
import type { TrafficShaper } from './shaper.js';

export function registerSourceRoutes(app: FastifyInstance, shaper: TrafficShaper): void {
  app.get('/v1/sources', async () => ({
    paused: shaper.paused().map((p) => ({ ...p, until: new Date(p.until).toISOString() })),
    warmup: shaper.warmupUsage().map((u) => ({ ...u, cap: Number.isFinite(u.cap) ? u.cap : null })),
  }));
  const resume = (kind: 'source' | 'pool') => async (req: { params: unknown }, reply: { code(n: number): unknown }) => {
    const target = (req.params as { name: string }).name;
    if (!shaper.resume(target, kind)) {
      reply.code(404);
      return { error: 'NOT_PAUSED', message: `${kind === 'pool' ? 'pool' : 'source address'} ${target} is not paused` };
    }
    return { resumed: target, kind };
  };
  app.post('/v1/sources/:name/resume', resume('source'));
  app.post('/v1/pools/:name/resume', resume('pool'));
  app.get('/v1/senders', async (req) => {
    const tenant = (req.query as { tenant?: string }).tenant;
    return { paused: shaper.pausedSenders(tenant).map((p) => ({ ...p, until: new Date(p.until).toISOString() })) };
  });
  app.post('/v1/senders/:tenant/:domain/resume', async (req, reply) => {
    const { tenant, domain } = req.params as { tenant: string; domain: string };
    if (!shaper.resumeSender(tenant, domain)) {
      reply.code(404);
      return { error: 'NOT_PAUSED', message: `sending domain ${domain} of tenant ${tenant} is not paused` };
    }
    return { resumed: domain.toLowerCase(), tenant, kind: 'sender' };
  });
}
