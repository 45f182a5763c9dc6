/**
 * The operations endpoints every service exposes: `/metrics` (Prometheus), `/healthz` (the
 * process is alive and its consumers really consume: 503 tells Kubernetes to restart it) and
 * `/readyz` (it can do its job: connected to Kafka, SMTP fleet up, ...).
 * As a Fastify plugin so the ingest API serves them on its own port too.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';

/** A readiness check: resolves to null when ready, or a reason when not. */
export type ReadinessCheck = () => Promise<string | null> | string | null;

export interface OpsDeps {
  registry: Registry;
  readiness: Record<string, ReadinessCheck>;
  /** Liveness checks (null: alive); any failing one makes `/healthz` answer 503. */
  liveness?: Record<string, ReadinessCheck>;
}

async function runChecks(checks: Record<string, ReadinessCheck>): Promise<{ ok: boolean; results: Record<string, string> }> {
  const results: Record<string, string> = {};
  let ok = true;
  for (const [name, check] of Object.entries(checks)) {
    let problem: string | null;
    try {
      problem = await check();
    } catch (err) {
      problem = (err as Error).message;
    }
    results[name] = problem ?? 'ok';
    if (problem) ok = false;
  }
  return { ok, results };
}

export function registerOpsRoutes(app: FastifyInstance, deps: OpsDeps): void {
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', deps.registry.contentType);
    return deps.registry.metrics();
  });
  app.get('/healthz', async (_req, reply) => {
    const { ok, results } = await runChecks(deps.liveness ?? {});
    reply.code(ok ? 200 : 503);
    return ok ? { status: 'ok' } : { status: 'unhealthy', checks: results };
  });
  app.get('/readyz', async (_req, reply) => {
    const { ok: ready, results } = await runChecks(deps.readiness);
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
