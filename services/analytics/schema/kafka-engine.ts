/**
 * The production alternative to the sink: ClickHouse reads `email.events` itself through a
 * Kafka-engine table, and materialized views parse each record into the same events table
 * (whose own views keep the rollups), or into `events_rejected` with the reason when it is not
 * a valid EmailEvent. Nothing of Postline runs for it; the read API and dashboards are the same.
 *
 * Trade-offs against the sink (see README.md): ClickHouse's Kafka engine is at-least-once (a
 * failure between writing a block and committing its offsets writes it again, with no
 * deduplication token), rejected records stay in ClickHouse rather than going to email.dead,
 * and back-pressure is ClickHouse's own. Use one or the other, never both on the same database.
 *
 * The validation below mirrors the EmailEvent contract's required fields.
 */
import { EVENT_TYPES } from '../../../shared/contracts/email-event.js';
import { assertIdentifier } from './migrator.js';

export interface KafkaEngineOptions {
  database: string;
  /** host:port list as ClickHouse's librdkafka sees it. */
  brokers: string[];
  topic: string;
  /** Consumer group of ClickHouse (not the sink's). */
  groupName: string;
  /** Consumers per ClickHouse server; at most the topic's partitions. */
  consumers?: number;
  retentionDays?: number;
}

const TYPES = EVENT_TYPES.map((t) => `'${t}'`).join(', ');

/** Why a raw record is not an event ('' when it is one); ClickHouse evaluates it per record. */
const REJECT_REASON = `multiIf(
      _error != '', concat('not JSON: ', _error),
      NOT isValidJSON(raw), 'not JSON',
      JSONExtractInt(raw, 'schemaVersion') != 1, 'schemaVersion must be 1',
      JSONExtractString(raw, 'eventId') = '', 'eventId missing',
      JSONExtractString(raw, 'type') NOT IN (${TYPES}), 'type is not an event type',
      JSONType(raw, 'messageId') != 'String', 'messageId missing',
      JSONType(raw, 'tenant') != 'String', 'tenant missing',
      JSONType(raw, 'stage') != 'String', 'stage missing',
      parseDateTime64BestEffortOrNull(JSONExtractString(raw, 'at'), 3, 'UTC') IS NULL, 'at is not a date-time',
      '')`;

const quote = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/** The statements, in order. Values are trusted configuration (validated), never request input. */
export function kafkaEngineStatements(o: KafkaEngineOptions): string[] {
  assertIdentifier(o.database);
  const db = o.database;
  for (const b of o.brokers) if (!/^[A-Za-z0-9.\-_[\]:]+:\d+$/.test(b)) throw new Error(`broker "${b}" is not host:port`);
  if (!/^[A-Za-z0-9._-]+$/.test(o.topic) || !/^[A-Za-z0-9._-]+$/.test(o.groupName)) throw new Error('topic and group must be plain Kafka names');
  return [
    // One String per record (JSONAsString): parsing happens in the views, so a malformed
    // record becomes a rejected row instead of stopping the stream ('stream' error mode).
    `CREATE TABLE IF NOT EXISTS ${db}.events_queue (raw String)
    ENGINE = Kafka
    SETTINGS kafka_broker_list = ${quote(o.brokers.join(','))},
             kafka_topic_list = ${quote(o.topic)},
             kafka_group_name = ${quote(o.groupName)},
             kafka_format = 'JSONAsString',
             kafka_num_consumers = ${Math.max(1, Math.trunc(o.consumers ?? 1))},
             kafka_handle_error_mode = 'stream'`,
    `CREATE TABLE IF NOT EXISTS ${db}.events_rejected
    (
      received_at DateTime('UTC') DEFAULT now(),
      reason String,
      raw String,
      kafka_topic LowCardinality(String),
      kafka_partition UInt16,
      kafka_offset UInt64
    )
    ENGINE = MergeTree
    ORDER BY received_at
    TTL received_at + toIntervalDay(${Math.max(1, Math.trunc(o.retentionDays ?? 30))})`,
    `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.events_queue_mv TO ${db}.events AS
    SELECT
      JSONExtractString(raw, 'eventId') AS event_id,
      JSONExtractString(raw, 'type') AS type,
      JSONExtractString(raw, 'messageId') AS message_id,
      JSONExtractString(raw, 'tenant') AS tenant,
      parseDateTime64BestEffort(JSONExtractString(raw, 'at'), 3, 'UTC') AS at,
      JSONExtractString(raw, 'stage') AS stage,
      JSONExtractString(raw, 'priority') AS priority,
      JSONExtract(raw, 'recipients', 'Array(String)') AS recipients,
      lower(JSONExtractString(raw, 'domain')) AS domain,
      JSONExtractString(raw, 'pool') AS pool,
      toUInt16(least(greatest(JSONExtractInt(raw, 'attempt'), 0), 65535)) AS attempt,
      toUInt16(least(greatest(JSONExtractInt(raw, 'smtp', 'code'), 0), 999)) AS smtp_code,
      JSONExtractString(raw, 'smtp', 'enhanced') AS smtp_enhanced,
      JSONExtractString(raw, 'smtp', 'message') AS smtp_message,
      JSONExtractString(raw, 'smtp', 'host') AS smtp_host,
      JSONExtractString(raw, 'reason') AS reason,
      parseDateTime64BestEffortOrNull(JSONExtractString(raw, 'nextAttemptAt'), 3, 'UTC') AS next_attempt_at,
      if(JSONHas(raw, 'latencyMs'), JSONExtractFloat(raw, 'latencyMs'), NULL) AS latency_ms,
      if(JSONHas(raw, 'connectionReused'), JSONExtractBool(raw, 'connectionReused') = 1, NULL) AS connection_reused,
      JSONExtract(raw, 'tags', 'Array(String)') AS tags,
      parseDateTime64BestEffortOrNull(JSONExtractString(raw, 'acceptedAt'), 3, 'UTC') AS accepted_at,
      JSONExtractString(raw, 'tls') AS tls,
      JSONExtractString(raw, 'source') AS source_ip,
      JSONExtractString(raw, 'site') AS site,
      JSONExtractString(raw, 'category') AS bounce_category,
      JSONExtractString(raw, 'bounceClass') AS bounce_class,
      JSONExtractString(raw, 'via') AS via,
      lower(JSONExtractString(raw, 'fromDomain')) AS from_domain,
      JSONExtractString(raw, 'listId') AS list_id,
      lower(JSONExtractString(raw, 'dkim', 'domain')) AS dkim_domain,
      JSONExtractString(raw, 'dkim', 'selector') AS dkim_selector,
      _topic AS kafka_topic,
      _partition AS kafka_partition,
      _offset AS kafka_offset
    FROM ${db}.events_queue
    WHERE ${REJECT_REASON} = ''`,
    `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.events_rejected_mv TO ${db}.events_rejected AS
    SELECT ${REJECT_REASON} AS reason,
           if(_error != '', _raw_message, raw) AS raw,
           _topic AS kafka_topic, _partition AS kafka_partition, _offset AS kafka_offset
    FROM ${db}.events_queue
    WHERE reason != ''`,
  ];
}

/** Stops ClickHouse consuming (drop the views first, then the queue); the data stays. */
export function dropKafkaEngineStatements(database: string): string[] {
  assertIdentifier(database);
  return [`DROP VIEW IF EXISTS ${database}.events_queue_mv`, `DROP VIEW IF EXISTS ${database}.events_rejected_mv`, `DROP TABLE IF EXISTS ${database}.events_queue`];
}
