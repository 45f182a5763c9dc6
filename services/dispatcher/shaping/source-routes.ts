/**
 * Operations endpoints for auto-pause on the dispatcher's ops server:
 *   GET  /v1/sources                    paused addresses and pools, warm-up usage
 *   POST /v1/sources/:address/resume    puts a paused address back in rotation (404: not paused)
 *   POST /v1/pools/:pool/resume         the same for a pool
 * Pause state lives in each dispatcher replica: resume every replica (each pod's ops port).
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
}
