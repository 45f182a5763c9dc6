/**
 * The message look-ups behind `GET /v1/messages/:id` and `GET /v1/messages`. Every query is
 * scoped to one tenant and takes its values as ClickHouse query parameters; the SQL text is
 * fixed apart from which optional filters are present.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { buildMessageView, type MessageView, type StoredEvent } from './timeline.js';
import { encodeCursor, type SearchParams } from './params.js';
import { MESSAGE_STATES_SQL, STATUS_PRECEDENCE } from '../../../shared/message-states.js';

export interface QueryContext {
  client: ClickHouseClient;
  database: string;
  /** Aborts a query that runs too long. */
  timeoutMs: number;
}

async function rows<T>(ctx: QueryContext, query: string, params: Record<string, unknown>): Promise<T[]> {
  const rs = await ctx.client.query({ query, query_params: params, format: 'JSONEachRow', abort_signal: AbortSignal.timeout(ctx.timeoutMs) });
  return rs.json<T>();
}

/** Events of one message, found through message_index so the scan covers only its time span. */
export async function getMessage(ctx: QueryContext, tenant: string, messageId: string): Promise<MessageView | null> {
  const db = ctx.database;
  const events = await rows<StoredEvent>(
    ctx,
    `WITH (SELECT (min(first_at), max(last_at)) FROM ${db}.message_index WHERE tenant = {tenant:String} AND message_id = {id:String}) AS span
     SELECT event_id AS eventId, type, toUnixTimestamp64Milli(at) AS atMs, stage, priority, recipients, domain, pool,
            attempt, smtp_code AS smtpCode, smtp_enhanced AS smtpEnhanced, smtp_message AS smtpMessage,
            smtp_host AS smtpHost, reason, toUnixTimestamp64Milli(next_attempt_at) AS nextAttemptAtMs,
            latency_ms AS latencyMs, connection_reused AS connectionReused, tags,
            tls, source_ip AS source, site, bounce_category AS category, bounce_class AS bounceClass, via,
            from_domain AS fromDomain, list_id AS listId, dkim_domain AS dkimDomain, dkim_selector AS dkimSelector,
            engagement_first AS engagementFirst, engagement_machine AS engagementMachine, machine_reason AS machineReason,
            link_index AS linkIndex, url, client_ip AS clientIp, user_agent AS userAgent
     FROM ${db}.events
     WHERE tenant = {tenant:String} AND message_id = {id:String} AND at >= span.1 AND at <= span.2
     ORDER BY at, event_id
     LIMIT 1 BY event_id
     LIMIT 10000`,
    { tenant, id: messageId },
  );
  // 64-bit integers arrive as numbers (COMMON_SETTINGS); Number() keeps that true for any server setting.
  return buildMessageView(
    messageId,
    events.map((e) => ({ ...e, atMs: Number(e.atMs), nextAttemptAtMs: e.nextAttemptAtMs === null ? null : Number(e.nextAttemptAtMs) })),
  );
}

export interface MessageSummary {
  messageId: string;
  acceptedAt: string;
  lastEventAt: string;
  /** One summary state: the first of failed, bounced, expired, suppressed, deferred, rendered, accepted present, else sent. */
  status: string;
  /** How many recipient domains are in each state. */
  states: Record<string, number>;
  priority?: string;
  recipients: string[];
  tags: string[];
  events: number;
}

export interface SearchResult {
  messages: MessageSummary[];
  /** Pass as `cursor` for the next page; absent on the last page. */
  nextCursor?: string;
}


interface SearchRow {
  messageId: string;
  acceptedAtMs: number;
  lastEventAtMs: number;
  states: string[];
  priority: string;
  recipients: string[];
  tags: string[];
  events: number;
}

/**
 * A message enters the list by its acceptance: the `accepted` event from the send API, or the
 * `rendered` event for records produced straight to Kafka (no `accepted` event). Both carry
 * the recipients and tags.
 */
const ANCHOR_SQL = "('accepted','rendered')";
/** How far before `from` an anchor is looked for, so a message accepted before the window but rendered inside it stays out. */
const ANCHOR_LOOKBACK_MS = 3_600_000;

function searchSql(db: string, p: SearchParams): string {
  // Candidates: every message with an anchor in the window (a superset; the outer filter is exact).
  const candidate = [
    'tenant = {tenant:String}',
    `type IN ${ANCHOR_SQL}`,
    'at >= fromUnixTimestamp64Milli({from:Int64})',
    'at < fromUnixTimestamp64Milli({to:Int64})',
    ...(p.recipient ? ['has(recipients, {recipient:String})'] : []),
    ...(p.tag ? ['has(tags, {tag:String})'] : []),
    ...(p.cursor ? ['at <= fromUnixTimestamp64Milli({cursorAt:Int64})'] : []),
  ];
  const outer = [
    'acceptedAtMs >= {from:Int64}',
    'acceptedAtMs < {to:Int64}',
    ...(p.status ? ['has(states, {status:String})'] : []),
    ...(p.cursor ? ['(acceptedAtMs < {cursorAt:Int64} OR (acceptedAtMs = {cursorAt:Int64} AND messageId < {cursorId:String}))'] : []),
  ];
  // Per message and recipient domain, the latest delivery state; message-wide events
  // (accepted, rendered) have no domain and stand for the message until it is dispatched.
  return `
    SELECT messageId, acceptedAtMs, lastEventAtMs, states, priority, recipients, tags, events
    FROM (
      SELECT message_id AS messageId,
             toUnixTimestamp64Milli(max(accepted_at)) AS acceptedAtMs,
             toUnixTimestamp64Milli(max(last_at)) AS lastEventAtMs,
             arrayFilter(s -> s != '', groupArrayIf(state, domain != '')) AS domainStates,
             arrayFilter(s -> s != '', if(empty(domainStates), [anyIf(state, domain = '')], domainStates)) AS states,
             anyIf(prio, prio != '') AS priority,
             arrayDistinct(arrayFlatten(groupArray(rcpts))) AS recipients,
             arrayDistinct(arrayFlatten(groupArray(tg))) AS tags,
             sum(n) AS events
      FROM (
        SELECT message_id, domain,
               minIf(at, type IN ${ANCHOR_SQL}) AS accepted_at,
               max(at) AS last_at,
               argMaxIf(type, at, type IN ${MESSAGE_STATES_SQL}) AS state,
               anyIf(priority, priority != '') AS prio,
               groupUniqArrayArray(recipients) AS rcpts,
               groupUniqArrayArray(tags) AS tg,
               count() AS n
        FROM ${db}.events
        WHERE tenant = {tenant:String}
          AND at >= fromUnixTimestamp64Milli({from:Int64} - ${ANCHOR_LOOKBACK_MS})
          AND message_id IN (SELECT message_id FROM ${db}.events WHERE ${candidate.join(' AND ')})
        GROUP BY message_id, domain
      )
      GROUP BY message_id
    )
    WHERE ${outer.join(' AND ')}
    ORDER BY acceptedAtMs DESC, messageId DESC
    LIMIT {limit:UInt32}`;
}

/** The one state a list shows for a message: problems first, `sent` only when every domain is sent. */
export function summaryStatus(states: string[]): string {
  return STATUS_PRECEDENCE.find((s) => states.includes(s)) ?? (states.includes('sent') ? 'sent' : (states[0] ?? 'accepted'));
}

export async function searchMessages(ctx: QueryContext, tenant: string, p: SearchParams): Promise<SearchResult> {
  const params: Record<string, unknown> = { tenant, from: p.from, to: p.to, limit: p.limit + 1 };
  if (p.recipient) params.recipient = p.recipient;
  if (p.tag) params.tag = p.tag;
  if (p.status) params.status = p.status;
  if (p.cursor) Object.assign(params, { cursorAt: p.cursor.acceptedAtMs, cursorId: p.cursor.messageId });
  const found = (await rows<SearchRow>(ctx, searchSql(ctx.database, p), params)).map((r) => ({ ...r, acceptedAtMs: Number(r.acceptedAtMs), lastEventAtMs: Number(r.lastEventAtMs) }));
  const page = found.slice(0, p.limit);
  const messages = page.map((r) => {
    const states: Record<string, number> = {};
    for (const s of r.states) states[s] = (states[s] ?? 0) + 1;
    return {
      messageId: r.messageId,
      acceptedAt: new Date(r.acceptedAtMs).toISOString(),
      lastEventAt: new Date(r.lastEventAtMs).toISOString(),
      status: summaryStatus(r.states),
      states,
      ...(r.priority ? { priority: r.priority } : {}),
      recipients: r.recipients,
      tags: r.tags,
      events: Number(r.events),
    };
  });
  const last = page[page.length - 1];
  return { messages, ...(found.length > p.limit && last ? { nextCursor: encodeCursor({ acceptedAtMs: last.acceptedAtMs, messageId: last.messageId }) } : {}) };
}
