/**
 * Pools and sites: what the dispatchers announced on `email.events` (OpsHealth) — paused source
 * addresses and pools (reason, rate, until when), sites' lowered limits per source address
 * (share of the rule, connection cap, rate), deferral rates and breaker-open deferrals per site
 * and source address, and paused sending domains. Sources, pools and sites serve every tenant,
 * so only admin keys see them; any key sees its own tenant's paused sending domains (an admin:
 * every tenant's).
 *
 * Resume buttons (admin) publish the `resumed` event the dispatcher's ops routes
 * (`POST /v1/sources/:address/resume`, `/v1/pools/:pool/resume`,
 * `/v1/senders/:tenant/:domain/resume`) publish: every dispatcher replica applies it from its
 * tail of email.events, so it holds on all of them.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import type { ConsoleDeps } from '../console-app.js';
import { userOf } from '../console-app.js';
import { page } from '../console-views.js';
import { pageData } from '../page-data.js';
import { ConsoleDenied } from '../console-errors.js';
import { senderResumedEvent, sourceResumedEvent } from '../../dispatcher/shaping/ops-events.js';

const ResumeForm = Type.Object({
  scope: Type.Union([Type.Literal('source'), Type.Literal('pool'), Type.Literal('sender')]),
  target: Type.String({ minLength: 1, maxLength: 320 }),
  tenant: Type.Optional(Type.String({ maxLength: 256 })),
  _csrf: Type.Optional(Type.String()),
});

const pct = (x: number | undefined): string => (x === undefined ? '' : `${(x * 100).toFixed(x < 0.01 ? 2 : 1)} %`);

export async function healthRoutes(app: FastifyInstance, deps: ConsoleDeps, now: () => number): Promise<void> {
  const render = (req: FastifyRequest, reply: FastifyReply, extra: Record<string, unknown> = {}) => {
    const user = userOf(req);
    const admin = user.can('admin');
    const t = now();
    const h = deps.health;
    const rate = <T extends { rate?: number }>(p: T) => ({ ...p, ratePct: pct(p.rate) });
    const installation = admin
      ? {
          paused: h.paused(t, { installation: true }).map(rate),
          limits: h.siteLimits().map((l) => ({ ...l, factorPct: pct(l.factor), lowered: l.factor < 1 })),
          sites: h.outcomesBy('site', t).map((r) => ({ ...r, deferralPct: pct(r.deferralRate), high: r.deferralRate >= 0.2 })),
          sources: h.outcomesBy('source', t).map((r) => ({ ...r, deferralPct: pct(r.deferralRate), high: r.deferralRate >= 0.2 })),
        }
      : undefined;
    const senders = h.paused(t, { tenant: admin ? '*' : user.tenant }).map(rate);
    return page(reply, 'health.hbs', pageData(req, deps, 'health', 'Pools and sites', { installation, senders, canResume: admin && deps.events !== undefined, historyMinutes: deps.config.historyMinutes, ...extra }));
  };

  // An admin-only key sees the installation's part; any reading key its tenant's sending domains.
  app.get('/health', { config: { consoleScope: ['read', 'admin'] } }, async (req, reply) => render(req, reply));

  app.post<{ Body: Static<typeof ResumeForm> }>('/health/resume', { config: { consoleScope: 'admin' }, schema: { body: ResumeForm } }, async (req, reply) => {
    if (!deps.events) throw new ConsoleDenied('resuming is not available on this API', 404);
    const { scope, target } = req.body;
    const tenant = scope === 'sender' ? (req.body.tenant ?? '') : undefined;
    const paused = deps.health.pausedOne(now(), scope, target, tenant);
    if (!paused) throw new ConsoleDenied(`${scope === 'sender' ? `sending domain ${target} of tenant ${tenant}` : `${scope === 'pool' ? 'pool' : 'source address'} ${target}`} is not paused`, 404);
    const event = scope === 'sender' ? senderResumedEvent({ tenant: tenant!, domain: target, reason: 'command' }) : sourceResumedEvent({ target, kind: scope, reason: 'command' });
    const published = await deps.events.publish(event);
    // This replica's page shows it at once; every other reader gets it from email.events.
    deps.health.apply(published);
    req.log.info({ scope, target, ...(tenant ? { forTenant: tenant } : {}) }, 'resumed from the console');
    return render(req, reply, { notice: `${target} resumed: every dispatcher applies it from email.events.` });
  });
}
