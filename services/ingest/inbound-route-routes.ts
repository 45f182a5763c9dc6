/**
 * Inbound routes over the send API: `POST /v1/inbound-routes` claims an inbound domain for the
 * tenant (201; 200 when it rewrites its own route; 409 DOMAIN_TAKEN when another tenant has it),
 * `GET /v1/inbound-routes` lists the tenant's routes, `GET` / `DELETE
 * /v1/inbound-routes/:domain` read or release one. A tenant with sender domains (configured or
 * administered) claims only those and their subdomains (400 naming `domain` otherwise). Another tenant's domain is a 404 to GET and
 * DELETE (no tenant learns who owns what). The inbound service reads every change from the
 * compacted topic and accepts mail for the domain from then on.
 */
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { LOCAL_PART_PATTERN, type InboundRoute } from '../../shared/contracts/inbound-route.js';
import { DomainTaken, type InboundRouteBook } from '../../shared/inbound-routes/inbound-route-book.js';
import { normalizeInboundDomain } from '../../shared/inbound-routes/inbound-route-rules.js';
import { RequestRejected } from '../../shared/http/errors.js';
import { ErrorBodySchema } from './email-body-schema.js';
import { ANY_SENDER_DOMAIN, inboundDomainProblem, type SenderDomainPolicy } from '../../shared/sender-domains.js';

export interface InboundRouteRoutesDeps {
  book: InboundRouteBook;
  /** Domains no tenant may claim (the bounce domain: its mail is Postline's own). */
  reservedDomains: readonly string[];
  /** Which domains a tenant may claim: its sender domains (default: any, as for sending). */
  senderDomains?: SenderDomainPolicy;
}

// Local parts are stored lower-case; the API takes them in any case.
const LocalPartInput = Type.String({ minLength: 1, maxLength: 64, pattern: LOCAL_PART_PATTERN.replaceAll('a-z', 'a-zA-Z') });

const ClaimSchema = Type.Object(
  {
    domain: Type.String({ minLength: 1, maxLength: 253 }),
    localParts: Type.Optional(Type.Array(LocalPartInput, { minItems: 1, maxItems: 100 })),
  },
  { additionalProperties: false },
);
const Params = Type.Object({ domain: Type.String({ minLength: 1, maxLength: 253 }) });

function view(r: InboundRoute): Record<string, unknown> {
  return { domain: r.domain, localParts: r.localParts, createdAt: r.createdAt, updatedAt: r.updatedAt };
}

function domainOf(raw: string, field: string): string {
  const domain = normalizeInboundDomain(raw);
  if (typeof domain !== 'string') throw new RequestRejected('VALIDATION_FAILED', 'the request is invalid', [{ field, message: domain.message }]);
  return domain;
}

export async function inboundRouteRoutes(v1: FastifyInstance, deps: InboundRouteRoutesDeps): Promise<void> {
  const { book } = deps;
  const reserved = new Set(deps.reservedDomains.map((d) => d.toLowerCase()).filter(Boolean));
  const errors = { 400: ErrorBodySchema, 401: ErrorBodySchema, 404: ErrorBodySchema, 409: ErrorBodySchema, 415: ErrorBodySchema, 503: ErrorBodySchema };

  v1.post<{ Body: Static<typeof ClaimSchema> }>('/v1/inbound-routes', { schema: { body: ClaimSchema, response: errors } }, async (req, reply) => {
    const domain = domainOf(req.body.domain, 'domain');
    if (reserved.has(domain)) throw new RequestRejected('VALIDATION_FAILED', 'the request is invalid', [{ field: 'domain', message: `${domain} is Postline's own bounce domain` }]);
    const notOwned = inboundDomainProblem(deps.senderDomains ?? ANY_SENDER_DOMAIN, req.tenant, domain);
    if (notOwned) throw new RequestRejected('VALIDATION_FAILED', 'the request is invalid', [{ field: 'domain', message: notOwned }]);
    try {
      const { route, created } = await book.claim(req.tenant, domain, req.body.localParts);
      req.log.info({ domain, localParts: route.localParts, created }, 'inbound route stored');
      return reply.code(created ? 201 : 200).send(view(route));
    } catch (err) {
      if (err instanceof DomainTaken) throw new RequestRejected('DOMAIN_TAKEN', err.message);
      throw err;
    }
  });

  v1.get('/v1/inbound-routes', async (req) => ({ routes: book.list(req.tenant).map(view) }));

  v1.get<{ Params: Static<typeof Params> }>('/v1/inbound-routes/:domain', { schema: { params: Params, response: errors } }, async (req) => {
    const domain = domainOf(req.params.domain, 'domain');
    const route = book.get(domain);
    if (route?.tenant !== req.tenant) throw new RequestRejected('NOT_FOUND', `no inbound route for ${domain}`);
    return view(route);
  });

  v1.delete<{ Params: Static<typeof Params> }>('/v1/inbound-routes/:domain', { schema: { params: Params, response: errors } }, async (req, reply) => {
    const domain = domainOf(req.params.domain, 'domain');
    if (!(await book.release(req.tenant, domain))) throw new RequestRejected('NOT_FOUND', `no inbound route for ${domain}`);
    req.log.info({ domain }, 'inbound route released');
    return reply.code(204).send();
  });
}
