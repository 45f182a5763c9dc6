/**
 * Mapping an `EmailEvent` (and where it came from) to a row of the events table. Pure: the
 * sink decodes and validates the record, this decides the columns.
 */
import type { EmailEvent } from '../../../shared/contracts/email-event.js';

/** Where a record sits in Kafka; stored with the row so a restarted sink can find what it already wrote. */
export interface RecordCoordinates {
  topic: string;
  partition: number;
  offset: string;
}

/** A row of `events`, keyed by column name (JSONEachRow). */
export interface EventRow {
  event_id: string;
  type: string;
  message_id: string;
  tenant: string;
  at: string;
  stage: string;
  priority: string;
  recipients: string[];
  domain: string;
  pool: string;
  attempt: number;
  smtp_code: number;
  smtp_enhanced: string;
  smtp_message: string;
  smtp_host: string;
  reason: string;
  next_attempt_at: string | null;
  latency_ms: number | null;
  connection_reused: boolean | null;
  tags: string[];
  accepted_at: string | null;
  tls: string;
  source_ip: string;
  site: string;
  bounce_category: string;
  bounce_class: string;
  via: string;
  from_domain: string;
  list_id: string;
  dkim_domain: string;
  dkim_selector: string;
  /** opened / clicked (the tracker's `engagement`): 1 / 0. */
  engagement_first: number;
  engagement_machine: number;
  machine_reason: string;
  link_index: number | null;
  url: string;
  client_ip: string;
  user_agent: string;
  kafka_topic: string;
  kafka_partition: number;
  kafka_offset: string;
}

/** The columns the sink writes, in the order `toEventValues` gives them. */
export const EVENT_COLUMNS = [
  'event_id', 'type', 'message_id', 'tenant', 'at', 'stage', 'priority', 'recipients', 'domain', 'pool', 'attempt',
  'smtp_code', 'smtp_enhanced', 'smtp_message', 'smtp_host', 'reason', 'next_attempt_at', 'latency_ms',
  'connection_reused', 'tags', 'accepted_at', 'tls', 'source_ip', 'site', 'bounce_category', 'bounce_class', 'via', 'from_domain', 'list_id', 'dkim_domain', 'dkim_selector',
  'engagement_first', 'engagement_machine', 'machine_reason', 'link_index', 'url', 'client_ip', 'user_agent',
  'kafka_topic', 'kafka_partition', 'kafka_offset',
] as const satisfies ReadonlyArray<keyof EventRow>;

/**
 * A row as positional values (JSONCompactEachRow): ClickHouse parses these markedly faster
 * than objects, whose every key it has to match.
 */
export function toEventValues(row: EventRow): unknown[] {
  return EVENT_COLUMNS.map((c) => row[c]);
}

/** Largest attempt number a row can hold (UInt16); larger values are clamped, not rejected. */
const MAX_ATTEMPT = 65_535;

function clampInt(n: number | undefined, max: number): number {
  if (n === undefined || !Number.isFinite(n) || n < 0) return 0;
  return Math.min(Math.trunc(n), max);
}

/**
 * The row for one event. Absent optional fields become the column's empty value ('' or 0)
 * rather than NULL where "absent" and "empty" mean the same to every query; timestamps and
 * measurements stay NULL so averages and quantiles skip them.
 */
export function toEventRow(e: EmailEvent, at: RecordCoordinates): EventRow {
  return {
    event_id: e.eventId,
    type: e.type,
    message_id: e.messageId,
    tenant: e.tenant,
    at: e.at,
    stage: e.stage,
    priority: e.priority ?? '',
    recipients: e.recipients ?? [],
    domain: (e.domain ?? '').toLowerCase(),
    pool: e.pool ?? '',
    attempt: clampInt(e.attempt, MAX_ATTEMPT),
    smtp_code: clampInt(e.smtp?.code, 999),
    smtp_enhanced: e.smtp?.enhanced ?? '',
    smtp_message: e.smtp?.message ?? '',
    smtp_host: e.smtp?.host ?? '',
    reason: e.reason ?? '',
    next_attempt_at: e.nextAttemptAt ?? null,
    latency_ms: e.latencyMs ?? null,
    connection_reused: e.connectionReused ?? null,
    tags: e.tags ?? [],
    accepted_at: e.acceptedAt ?? null,
    tls: e.tls ?? '',
    source_ip: e.source ?? '',
    site: e.site ?? '',
    bounce_category: e.category ?? '',
    bounce_class: e.bounceClass ?? '',
    via: e.via ?? '',
    from_domain: (e.fromDomain ?? '').toLowerCase(),
    list_id: e.listId ?? '',
    dkim_domain: (e.dkim?.domain ?? '').toLowerCase(),
    dkim_selector: e.dkim?.selector ?? '',
    engagement_first: e.engagement?.first ? 1 : 0,
    engagement_machine: e.engagement?.machine ? 1 : 0,
    machine_reason: e.engagement?.machineReason ?? '',
    link_index: e.engagement?.linkIndex ?? null,
    url: e.engagement?.url ?? '',
    client_ip: e.engagement?.ip ?? '',
    user_agent: e.engagement?.userAgent ?? '',
    kafka_topic: at.topic,
    kafka_partition: at.partition,
    kafka_offset: at.offset,
  };
}
