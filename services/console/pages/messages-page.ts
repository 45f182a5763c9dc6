/**
 * Messages: search (recipient, tag, state, time) and one message's timeline per recipient with
 * the SMTP replies and the time spent at each step ("why was it late?"), from the analytics
 * read API with the session's key. An admin who switched tenant reads that tenant's messages
 * (the read API's `Postline-Tenant` override, admin keys only).
 */
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import type { ConsoleDeps, ConsoleUser } from '../console-app.js';
import { userOf } from '../console-app.js';
import { page } from '../console-views.js';
import { pageData } from '../page-data.js';
import { readApi, ReadApiError } from '../read-api-client.js';

const SEARCH_FIELDS = ['recipient', 'tag', 'status', 'from', 'to', 'cursor'] as const;
const SearchQuery = Type.Object(Object.fromEntries(SEARCH_FIELDS.map((f) => [f, Type.Optional(Type.String({ maxLength: 320 }))])), { additionalProperties: false });
const STATES = ['accepted', 'rendered', 'deferred', 'sent', 'bounced', 'expired', 'failed', 'suppressed'];

interface Listed {
  messageId: string;
  acceptedAt?: string;
  lastEventAt?: string;
  status: string;
  recipients?: string[];
  tags?: string[];
}
interface Step {
  type: string;
  at: string;
  stage: string;
  sincePreviousMs: number;
  sinceAcceptedMs: number;
  recipients?: string[];
  domain?: string;
  smtp?: { code?: number; enhanced?: string; message?: string; host?: string };
  reason?: string;
  attempt?: number;
}
interface MessageView {
  messageId: string;
  acceptedAt?: string;
  tags?: string[];
  recipients: Array<{ address: string; state: string; since?: string; afterAcceptedMs?: number; attempts?: number; lastSmtp?: { code?: number; message?: string } }>;
  timeline: Step[];
}

/** Pure: time spent before each kind of step (the wait that ended in it), largest first. */
export function timeByStep(timeline: Array<Pick<Step, 'type' | 'stage' | 'sincePreviousMs'>>): Array<{ step: string; ms: number; share: number }> {
  const by = new Map<string, number>();
  for (const s of timeline) by.set(`${s.stage} → ${s.type}`, (by.get(`${s.stage} → ${s.type}`) ?? 0) + s.sincePreviousMs);
  const total = [...by.values()].reduce((a, b) => a + b, 0);
  return [...by].map(([step, ms]) => ({ step, ms, share: total > 0 ? Math.round((ms / total) * 100) : 0 })).sort((a, b) => b.ms - a.ms);
}

/** The read API's tenant override when an admin switched to another tenant (none otherwise: the key's own). */
function asTenant(user: ConsoleUser): { asTenant?: string } {
  return user.tenant !== user.who.tenant && user.can('admin') ? { asTenant: user.tenant } : {};
}

export async function messageRoutes(app: FastifyInstance, deps: ConsoleDeps): Promise<void> {
  app.get<{ Querystring: Static<typeof SearchQuery> }>('/messages', { schema: { querystring: SearchQuery } }, async (req, reply) => {
    const user = userOf(req);
    const q = new URLSearchParams();
    for (const f of SEARCH_FIELDS) {
      const v = req.query[f]?.trim();
      // datetime-local inputs give "2026-12-03T19:00": read as UTC, as the page says.
      if (v) q.set(f, (f === 'from' || f === 'to') && /^\d{4}-\d\d-\d\dT\d\d:\d\d$/.test(v) ? `${v}:00Z` : v);
    }
    let result: { messages: Listed[]; nextCursor?: string } = { messages: [] };
    let error: string | undefined;
    try {
      result = await readApi(deps.readApiUrl, user.key, `/v1/messages?${q}`, asTenant(user));
    } catch (err) {
      if (!(err instanceof ReadApiError)) throw err;
      error = err.message;
    }
    const next = result.nextCursor ? new URLSearchParams({ ...Object.fromEntries(q), cursor: result.nextCursor }).toString() : undefined;
    return page(reply, 'messages.hbs', pageData(req, deps, 'messages', 'Messages', { query: req.query, states: STATES.map((s) => ({ s, selected: s === req.query.status })), messages: result.messages, next, error }));
  });

  app.get<{ Params: { id: string } }>('/messages/:id', { schema: { params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) }) } }, async (req, reply) => {
    const user = userOf(req);
    let message: MessageView | undefined;
    let error: string | undefined;
    try {
      message = await readApi<MessageView>(deps.readApiUrl, user.key, `/v1/messages/${encodeURIComponent(req.params.id)}`, asTenant(user));
    } catch (err) {
      if (!(err instanceof ReadApiError)) throw err;
      error = err.status === 404 ? `No message "${req.params.id}" (yet: events reach analytics within a few seconds).` : err.message;
      reply.code(err.status === 404 ? 404 : 502);
    }
    return page(reply, 'message.hbs', pageData(req, deps, 'messages', `Message ${req.params.id}`, { id: req.params.id, message, error, spent: message ? timeByStep(message.timeline) : [] }));
  });
}
