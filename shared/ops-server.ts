/**
 * The operations endpoints every service exposes: `/metrics` (Prometheus), `/healthz` (the
 * process is alive) and `/readyz` (it can do its job: connected to Kafka, SMTP fleet up, ...).
 * As a Fastify plugin so the ingest API serves them on its own port too.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';

/** A readiness check: resolves to null when ready, or a reason when not. */
export type ReadinessCheck = () => Promise<string | null> | string | null;

export interface OpsDeps {
  registry: Registry;
  readiness: Record<string, ReadinessCheck>;
}

export function registerOpsRoutes(app: FastifyInstance, deps: OpsDeps): void {
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', deps.registry.contentType);
    return deps.registry.metrics();
  });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const results: Record<string, string> = {};
    let ready = true;
    for (const [name, check] of Object.entries(deps.readiness)) {
      let problem: string | null;
      try {
        problem = await check();
      } catch (err) {
        problem = (err as Error).message;
      }
      results[name] = problem ?? 'ok';
      if (problem) ready = false;
    }
    reply.code(ready ? 200 : 503);
    return { status: ready ? 'ready' : 'not ready', checks: results };
  });
}

/** A Fastify app with only the ops routes (stages without an HTTP API). Never listens by itself. */
export function buildOpsApp(deps: OpsDeps): FastifyInstance {
  const app = Fastify({ logger: false });
  registerOpsRoutes(app, deps);
  return app;
}
