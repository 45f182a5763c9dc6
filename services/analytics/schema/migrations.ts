/**
 * The analytics schema as an ordered list of versioned migrations. The same statements run on
 * a ClickHouse server (24.3 or newer) and on the embedded engine (chDB). Every statement is
 * idempotent (`IF NOT EXISTS`), so a migration interrupted half-way is simply run again; a
 * version is recorded in `schema_migrations` only after all its statements succeeded.
 *
 * Never edit a migration that has shipped: add a new one. Retention (the TTLs) is not a
 * migration but configuration, reconciled at every start by `applyRetention`.
 */

export interface SchemaParams {
  /** Database name; validated as an identifier before it reaches SQL. */
  database: string;
  retentionDays: number;
  rollupRetentionDays: number;
}

export interface Migration {
  version: number;
  name: string;
  statements(p: SchemaParams): string[];
}

/** Quantile levels kept by the latency rollups; queries must merge with the same levels. */
export const LATENCY_LEVELS = '0.5, 0.9, 0.95, 0.99';

/**
 * Keeps the hashes of the last 1000 inserted blocks per table so a retried insert with the same
 * `insert_deduplication_token` is dropped: on the events table and on every rollup the
 * materialized views write to (their blocks derive their tokens from the source insert).
 */
const DEDUP = 'non_replicated_deduplication_window = 1000';

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'events table',
    statements: ({ database: db, retentionDays }) => [
      // One row per EmailEvent. Ordered for the per-tenant time-range scans every query makes;
      // message-id look-ups go through message_index (migration 2) to an exact time range, and
      // the bloom filter then skips the granules of other messages. kafka_* locate the record
      // the row came from: the sink looks them up once per partition assignment to find what a
      // crashed predecessor inserted but never committed; offsets only grow, so the minmax
      // index skips every granule older than the last few batches (a projection would serve
      // the look-up too, at twice the insert cost). Rows are deduplicated per insert token
      // (non_replicated_deduplication_window), see services/analytics/README.md.
      `CREATE TABLE IF NOT EXISTS ${db}.events
      (
        event_id String,
        type LowCardinality(String),
        message_id String,
        tenant LowCardinality(String),
        at DateTime64(3, 'UTC'),
        stage LowCardinality(String),
        priority LowCardinality(String),
        recipients Array(String),
        domain LowCardinality(String),
        pool LowCardinality(String),
        attempt UInt16,
        smtp_code UInt16,
        smtp_enhanced LowCardinality(String),
        smtp_message String,
        smtp_host LowCardinality(String),
        reason String,
        next_attempt_at Nullable(DateTime64(3, 'UTC')),
        latency_ms Nullable(Float64),
        connection_reused Nullable(Bool),
        tags Array(LowCardinality(String)),
        accepted_at Nullable(DateTime64(3, 'UTC')),
        kafka_topic LowCardinality(String),
        kafka_partition UInt16,
        kafka_offset UInt64,
        inserted_at DateTime('UTC') DEFAULT now(),
        INDEX idx_message_id message_id TYPE bloom_filter(0.001) GRANULARITY 1,
        INDEX idx_recipients recipients TYPE bloom_filter(0.01) GRANULARITY 1,
        INDEX idx_kafka_offset kafka_offset TYPE minmax GRANULARITY 1
      )
      ENGINE = MergeTree
      PARTITION BY toDate(at)
      ORDER BY (tenant, at, message_id)
      TTL toDateTime(at) + toIntervalDay(${retentionDays})
      SETTINGS ${DEDUP}, ttl_only_drop_parts = 1`,
    ],
  },
  {
    version: 2,
    name: 'message index',
    statements: ({ database: db, retentionDays }) => [
      // Where in time each message lives, keyed by message id: turns "all events of message X"
      // into a primary-key range scan of the events table.
      `CREATE TABLE IF NOT EXISTS ${db}.message_index
      (
        tenant LowCardinality(String),
        message_id String,
        first_at SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
        last_at SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
      )
      ENGINE = AggregatingMergeTree
      ORDER BY (tenant, message_id)
      TTL toDateTime(last_at) + toIntervalDay(${retentionDays})
      SETTINGS ${DEDUP}`,
      `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.message_index_mv TO ${db}.message_index AS
      SELECT tenant, message_id, min(at) AS first_at, max(at) AS last_at
      FROM ${db}.events
      GROUP BY tenant, message_id`,
    ],
  },
  {
    version: 3,
    name: 'per-minute stats rollup',
    statements: ({ database: db, rollupRetentionDays }) => [
      // Counts per minute by tenant, event type, priority, domain and pool, with the
      // accepted → sent latency digest on the `sent` rows. Dashboards and /v1/stats read this.
      `CREATE TABLE IF NOT EXISTS ${db}.stats_per_minute
      (
        minute DateTime('UTC'),
        tenant LowCardinality(String),
        type LowCardinality(String),
        priority LowCardinality(String),
        domain LowCardinality(String),
        pool LowCardinality(String),
        events SimpleAggregateFunction(sum, UInt64),
        recipients SimpleAggregateFunction(sum, UInt64),
        delivery_ms AggregateFunction(quantilesTDigest(${LATENCY_LEVELS}), Float64)
      )
      ENGINE = AggregatingMergeTree
      PARTITION BY toYYYYMM(minute)
      ORDER BY (tenant, minute, type, priority, domain, pool)
      TTL minute + toIntervalDay(${rollupRetentionDays})
      SETTINGS ${DEDUP}`,
      `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.stats_per_minute_mv TO ${db}.stats_per_minute AS
      SELECT
        toStartOfMinute(at) AS minute, tenant, type, priority, domain, pool,
        count() AS events,
        sum(length(recipients)) AS recipients,
        quantilesTDigestStateIf(${LATENCY_LEVELS})(
          toFloat64(dateDiff('millisecond', assumeNotNull(accepted_at), at)),
          type = 'sent' AND accepted_at IS NOT NULL
        ) AS delivery_ms
      FROM ${db}.events
      GROUP BY minute, tenant, type, priority, domain, pool`,
    ],
  },
  {
    version: 4,
    name: 'per-minute stats by tag',
    statements: ({ database: db, rollupRetentionDays }) => [
      // Tags are an array; one row per (event, tag) so `groupBy=tag` is a rollup read too.
      `CREATE TABLE IF NOT EXISTS ${db}.stats_per_minute_by_tag
      (
        minute DateTime('UTC'),
        tenant LowCardinality(String),
        tag LowCardinality(String),
        type LowCardinality(String),
        events SimpleAggregateFunction(sum, UInt64),
        recipients SimpleAggregateFunction(sum, UInt64),
        delivery_ms AggregateFunction(quantilesTDigest(${LATENCY_LEVELS}), Float64)
      )
      ENGINE = AggregatingMergeTree
      PARTITION BY toYYYYMM(minute)
      ORDER BY (tenant, minute, tag, type)
      TTL minute + toIntervalDay(${rollupRetentionDays})
      SETTINGS ${DEDUP}`,
      `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.stats_per_minute_by_tag_mv TO ${db}.stats_per_minute_by_tag AS
      SELECT
        toStartOfMinute(at) AS minute, tenant, tag, type,
        count() AS events,
        sum(length(recipients)) AS recipients,
        quantilesTDigestStateIf(${LATENCY_LEVELS})(
          toFloat64(dateDiff('millisecond', assumeNotNull(accepted_at), at)),
          type = 'sent' AND accepted_at IS NOT NULL
        ) AS delivery_ms
      FROM ${db}.events
      ARRAY JOIN tags AS tag
      GROUP BY minute, tenant, tag, type`,
    ],
  },
  {
    version: 5,
    name: 'hourly stats rollups',
    statements: ({ database: db, rollupRetentionDays }) => [
      // The per-minute rollups folded into hours, for long ranges (/v1/stats over weeks reads
      // ~60x fewer rows). Fed from the minute tables' inserts, so they cost a fraction of a view
      // on the events table.
      `CREATE TABLE IF NOT EXISTS ${db}.stats_per_hour AS ${db}.stats_per_minute
      ENGINE = AggregatingMergeTree
      PARTITION BY toYYYYMM(minute)
      ORDER BY (tenant, minute, type, priority, domain, pool)
      TTL minute + toIntervalDay(${rollupRetentionDays})
      SETTINGS ${DEDUP}`,
      `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.stats_per_hour_mv TO ${db}.stats_per_hour AS
      SELECT toStartOfHour(minute) AS minute, tenant, type, priority, domain, pool,
             sum(events) AS events, sum(recipients) AS recipients,
             quantilesTDigestMergeState(${LATENCY_LEVELS})(delivery_ms) AS delivery_ms
      FROM ${db}.stats_per_minute
      GROUP BY minute, tenant, type, priority, domain, pool`,
      `CREATE TABLE IF NOT EXISTS ${db}.stats_per_hour_by_tag AS ${db}.stats_per_minute_by_tag
      ENGINE = AggregatingMergeTree
      PARTITION BY toYYYYMM(minute)
      ORDER BY (tenant, minute, tag, type)
      TTL minute + toIntervalDay(${rollupRetentionDays})
      SETTINGS ${DEDUP}`,
      `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.stats_per_hour_by_tag_mv TO ${db}.stats_per_hour_by_tag AS
      SELECT toStartOfHour(minute) AS minute, tenant, tag, type,
             sum(events) AS events, sum(recipients) AS recipients,
             quantilesTDigestMergeState(${LATENCY_LEVELS})(delivery_ms) AS delivery_ms
      FROM ${db}.stats_per_minute_by_tag
      GROUP BY minute, tenant, tag, type`,
    ],
  },
  {
    version: 6,
    name: 'direct delivery fields and per-minute stats by site',
    statements: ({ database: db, rollupRetentionDays }) => [
      // How a message left over an mx route (source address, site, TLS protocol), why a bounce
      // happened beyond the SMTP reply (`dns`), and which key signed it. Adding columns only
      // writes metadata: existing rows read the empty default, as events without these fields do.
      `ALTER TABLE ${db}.events
        ADD COLUMN IF NOT EXISTS tls LowCardinality(String) AFTER accepted_at,
        ADD COLUMN IF NOT EXISTS source_ip LowCardinality(String) AFTER tls,
        ADD COLUMN IF NOT EXISTS site LowCardinality(String) AFTER source_ip,
        ADD COLUMN IF NOT EXISTS bounce_category LowCardinality(String) AFTER site,
        ADD COLUMN IF NOT EXISTS dkim_domain LowCardinality(String) AFTER bounce_category,
        ADD COLUMN IF NOT EXISTS dkim_selector LowCardinality(String) AFTER dkim_domain`,
      // Counts per minute by site and source address (what shaping limits and auto-pause count
      // per), with pool, TLS protocol and bounce category. Its own table rather than more keys
      // on stats_per_minute: sites are few where domains are many, so this stays small, and the
      // domain rollup keeps its size. It holds the events stored after this migration only
      // (earlier events carry none of these fields).
      `CREATE TABLE IF NOT EXISTS ${db}.stats_per_minute_by_site
      (
        minute DateTime('UTC'),
        tenant LowCardinality(String),
        site LowCardinality(String),
        source_ip LowCardinality(String),
        pool LowCardinality(String),
        type LowCardinality(String),
        tls LowCardinality(String),
        bounce_category LowCardinality(String),
        events SimpleAggregateFunction(sum, UInt64),
        recipients SimpleAggregateFunction(sum, UInt64),
        delivery_ms AggregateFunction(quantilesTDigest(${LATENCY_LEVELS}), Float64)
      )
      ENGINE = AggregatingMergeTree
      PARTITION BY toYYYYMM(minute)
      ORDER BY (tenant, minute, site, source_ip, pool, type, tls, bounce_category)
      TTL minute + toIntervalDay(${rollupRetentionDays})
      SETTINGS ${DEDUP}`,
      `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.stats_per_minute_by_site_mv TO ${db}.stats_per_minute_by_site AS
      SELECT
        toStartOfMinute(at) AS minute, tenant, site, source_ip, pool, type, tls, bounce_category,
        count() AS events,
        sum(length(recipients)) AS recipients,
        quantilesTDigestStateIf(${LATENCY_LEVELS})(
          toFloat64(dateDiff('millisecond', assumeNotNull(accepted_at), at)),
          type = 'sent' AND accepted_at IS NOT NULL
        ) AS delivery_ms
      FROM ${db}.events
      GROUP BY minute, tenant, site, source_ip, pool, type, tls, bounce_category`,
      `CREATE TABLE IF NOT EXISTS ${db}.stats_per_hour_by_site AS ${db}.stats_per_minute_by_site
      ENGINE = AggregatingMergeTree
      PARTITION BY toYYYYMM(minute)
      ORDER BY (tenant, minute, site, source_ip, pool, type, tls, bounce_category)
      TTL minute + toIntervalDay(${rollupRetentionDays})
      SETTINGS ${DEDUP}`,
      `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.stats_per_hour_by_site_mv TO ${db}.stats_per_hour_by_site AS
      SELECT toStartOfHour(minute) AS minute, tenant, site, source_ip, pool, type, tls, bounce_category,
             sum(events) AS events, sum(recipients) AS recipients,
             quantilesTDigestMergeState(${LATENCY_LEVELS})(delivery_ms) AS delivery_ms
      FROM ${db}.stats_per_minute_by_site
      GROUP BY minute, tenant, site, source_ip, pool, type, tls, bounce_category`,
    ],
  },
  {
    version: 7,
    name: 'bounce class, feedback channel, sending domain and list; per-minute stats by bounce',
    statements: ({ database: db, rollupRetentionDays }) => [
      // Whose problem a bounce or deferral is (recipient, infrastructure, content), how feedback
      // arrived (dsn, arf, ses, one-click, …), the From domain and the mailing list. Metadata
      // only: older rows read ''.
      `ALTER TABLE ${db}.events
        ADD COLUMN IF NOT EXISTS bounce_class LowCardinality(String) AFTER bounce_category,
        ADD COLUMN IF NOT EXISTS via LowCardinality(String) AFTER bounce_class,
        ADD COLUMN IF NOT EXISTS from_domain LowCardinality(String) AFTER via,
        ADD COLUMN IF NOT EXISTS list_id String AFTER from_domain`,
      // Counts per minute by bounce category and class, feedback channel and sending domain:
      // the "bounces by category" and complaint / unsubscribe panels, and /v1/stats grouped by
      // class, via or fromDomain. Events stored after this migration only.
      `CREATE TABLE IF NOT EXISTS ${db}.stats_per_minute_by_bounce
      (
        minute DateTime('UTC'),
        tenant LowCardinality(String),
        type LowCardinality(String),
        bounce_category LowCardinality(String),
        bounce_class LowCardinality(String),
        via LowCardinality(String),
        from_domain LowCardinality(String),
        events SimpleAggregateFunction(sum, UInt64),
        recipients SimpleAggregateFunction(sum, UInt64),
        delivery_ms AggregateFunction(quantilesTDigest(${LATENCY_LEVELS}), Float64)
      )
      ENGINE = AggregatingMergeTree
      PARTITION BY toYYYYMM(minute)
      ORDER BY (tenant, minute, type, bounce_category, bounce_class, via, from_domain)
      TTL minute + toIntervalDay(${rollupRetentionDays})
      SETTINGS ${DEDUP}`,
      `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.stats_per_minute_by_bounce_mv TO ${db}.stats_per_minute_by_bounce AS
      SELECT
        toStartOfMinute(at) AS minute, tenant, type, bounce_category, bounce_class, via, from_domain,
        count() AS events,
        sum(length(recipients)) AS recipients,
        quantilesTDigestStateIf(${LATENCY_LEVELS})(
          toFloat64(dateDiff('millisecond', assumeNotNull(accepted_at), at)),
          type = 'sent' AND accepted_at IS NOT NULL
        ) AS delivery_ms
      FROM ${db}.events
      GROUP BY minute, tenant, type, bounce_category, bounce_class, via, from_domain`,
      `CREATE TABLE IF NOT EXISTS ${db}.stats_per_hour_by_bounce AS ${db}.stats_per_minute_by_bounce
      ENGINE = AggregatingMergeTree
      PARTITION BY toYYYYMM(minute)
      ORDER BY (tenant, minute, type, bounce_category, bounce_class, via, from_domain)
      TTL minute + toIntervalDay(${rollupRetentionDays})
      SETTINGS ${DEDUP}`,
      `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.stats_per_hour_by_bounce_mv TO ${db}.stats_per_hour_by_bounce AS
      SELECT toStartOfHour(minute) AS minute, tenant, type, bounce_category, bounce_class, via, from_domain,
             sum(events) AS events, sum(recipients) AS recipients,
             quantilesTDigestMergeState(${LATENCY_LEVELS})(delivery_ms) AS delivery_ms
      FROM ${db}.stats_per_minute_by_bounce
      GROUP BY minute, tenant, type, bounce_category, bounce_class, via, from_domain`,
    ],
  },
  {
    version: 8,
    name: 'engagement (opens and clicks); per-minute stats by engagement',
    statements: ({ database: db, rollupRetentionDays }) => [
      // The tracker's `engagement` on opened / clicked events: first open (or first click of a
      // link) as one replica saw it, machine-flagged hits and the rule that flagged them, the
      // link, and the truncated client address and user agent. Older rows read 0 / ''.
      `ALTER TABLE ${db}.events
        ADD COLUMN IF NOT EXISTS engagement_first UInt8 AFTER dkim_selector,
        ADD COLUMN IF NOT EXISTS engagement_machine UInt8 AFTER engagement_first,
        ADD COLUMN IF NOT EXISTS machine_reason LowCardinality(String) AFTER engagement_machine,
        ADD COLUMN IF NOT EXISTS link_index Nullable(UInt16) AFTER machine_reason,
        ADD COLUMN IF NOT EXISTS url String AFTER link_index,
        ADD COLUMN IF NOT EXISTS client_ip String AFTER url,
        ADD COLUMN IF NOT EXISTS user_agent String AFTER client_ip`,
      // Opens and clicks per minute by who made them (human, or the machine rule: apple-mpp,
      // user-agent, too-soon, click-burst, …) and whether they were first: /v1/stats grouped by
      // engagement or first, and the dashboard's engagement panel. Same shape as the other
      // rollups (delivery_ms stays empty) so one query serves them all.
      `CREATE TABLE IF NOT EXISTS ${db}.stats_per_minute_by_engagement
      (
        minute DateTime('UTC'),
        tenant LowCardinality(String),
        type LowCardinality(String),
        engagement LowCardinality(String),
        first UInt8,
        events SimpleAggregateFunction(sum, UInt64),
        recipients SimpleAggregateFunction(sum, UInt64),
        delivery_ms AggregateFunction(quantilesTDigest(${LATENCY_LEVELS}), Float64)
      )
      ENGINE = AggregatingMergeTree
      PARTITION BY toYYYYMM(minute)
      ORDER BY (tenant, minute, type, engagement, first)
      TTL minute + toIntervalDay(${rollupRetentionDays})
      SETTINGS ${DEDUP}`,
      `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.stats_per_minute_by_engagement_mv TO ${db}.stats_per_minute_by_engagement AS
      SELECT
        toStartOfMinute(at) AS minute, tenant, type,
        if(engagement_machine = 1, if(machine_reason = '', 'machine', machine_reason), 'human') AS engagement,
        engagement_first AS first,
        count() AS events,
        sum(length(recipients)) AS recipients,
        quantilesTDigestStateIf(${LATENCY_LEVELS})(toFloat64(0), 0) AS delivery_ms
      FROM ${db}.events
      WHERE type IN ('opened', 'clicked')
      GROUP BY minute, tenant, type, engagement, first`,
      `CREATE TABLE IF NOT EXISTS ${db}.stats_per_hour_by_engagement AS ${db}.stats_per_minute_by_engagement
      ENGINE = AggregatingMergeTree
      PARTITION BY toYYYYMM(minute)
      ORDER BY (tenant, minute, type, engagement, first)
      TTL minute + toIntervalDay(${rollupRetentionDays})
      SETTINGS ${DEDUP}`,
      `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.stats_per_hour_by_engagement_mv TO ${db}.stats_per_hour_by_engagement AS
      SELECT toStartOfHour(minute) AS minute, tenant, type, engagement, first,
             sum(events) AS events, sum(recipients) AS recipients,
             quantilesTDigestMergeState(${LATENCY_LEVELS})(delivery_ms) AS delivery_ms
      FROM ${db}.stats_per_minute_by_engagement
      GROUP BY minute, tenant, type, engagement, first`,
    ],
  },
];

/** Tables whose TTL follows `retentionDays` / `rollupRetentionDays`, with their TTL expression. */
export function retentionTargets(p: SchemaParams): Array<{ table: string; days: number; ttl: (days: number) => string }> {
  return [
    { table: 'events', days: p.retentionDays, ttl: (d) => `toDateTime(at) + toIntervalDay(${d})` },
    { table: 'message_index', days: p.retentionDays, ttl: (d) => `toDateTime(last_at) + toIntervalDay(${d})` },
    { table: 'stats_per_minute', days: p.rollupRetentionDays, ttl: (d) => `minute + toIntervalDay(${d})` },
    { table: 'stats_per_minute_by_tag', days: p.rollupRetentionDays, ttl: (d) => `minute + toIntervalDay(${d})` },
    { table: 'stats_per_hour', days: p.rollupRetentionDays, ttl: (d) => `minute + toIntervalDay(${d})` },
    { table: 'stats_per_hour_by_tag', days: p.rollupRetentionDays, ttl: (d) => `minute + toIntervalDay(${d})` },
    { table: 'stats_per_minute_by_site', days: p.rollupRetentionDays, ttl: (d) => `minute + toIntervalDay(${d})` },
    { table: 'stats_per_hour_by_site', days: p.rollupRetentionDays, ttl: (d) => `minute + toIntervalDay(${d})` },
    { table: 'stats_per_minute_by_bounce', days: p.rollupRetentionDays, ttl: (d) => `minute + toIntervalDay(${d})` },
    { table: 'stats_per_hour_by_bounce', days: p.rollupRetentionDays, ttl: (d) => `minute + toIntervalDay(${d})` },
    { table: 'stats_per_minute_by_engagement', days: p.rollupRetentionDays, ttl: (d) => `minute + toIntervalDay(${d})` },
    { table: 'stats_per_hour_by_engagement', days: p.rollupRetentionDays, ttl: (d) => `minute + toIntervalDay(${d})` },
  ];
}
