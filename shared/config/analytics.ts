/** Options of the analytics stage (`services/analytics`): the ClickHouse sink and the read API. */
import { Type } from '@sinclair/typebox';
import { section, int, str, bool } from './schema-helpers.js';

export const AnalyticsSection = section(
  {
    host: str('0.0.0.0', 'Interface the read API (/v1/messages, /v1/stats) listens on.'),
    port: int(8082, 'Port of the read API (it also serves /metrics, /healthz and /readyz); 0 picks a free port.'),
    clickhouseUrl: str(
      '',
      'ClickHouse server HTTP(S) URL, e.g. http://clickhouse:8123 (production; ClickHouse 24.3 or newer). Empty runs the embedded in-process engine (chDB) on dataDir.',
    ),
    clickhouseUser: str('default', 'ClickHouse user (server mode only).'),
    clickhousePassword: str('', 'ClickHouse password (server mode only); pass it from a secret.'),
    dataDir: str(
      'data/analytics',
      'Data directory of the embedded engine when clickhouseUrl is empty. Only one process may open it: the analytics service owns it and serves the read API.',
    ),
    database: Type.String({ default: 'postline', pattern: '^[A-Za-z_][A-Za-z0-9_]{0,63}$', description: 'ClickHouse database holding the events table, rollups and migrations.' }),
    migrateOnStart: bool(true, 'Apply pending schema migrations at start-up (otherwise run `postline migrate`).'),
    retentionDays: int(90, 'Days raw events are kept (TTL on the events table; applied at start-up when changed).', 1),
    rollupRetentionDays: int(400, 'Days the per-minute rollups (counts, latency quantiles) are kept.', 1),
    groupId: str('postline-analytics', 'Consumer group of the sink on email.events.'),
    sessionTimeoutMs: int(30_000, 'Consumer session timeout: how long the partitions of a sink that died stay with it before the group hands them on.', 6000),
    batchMaxRows: int(10_000, 'Rows per ClickHouse insert: a batch is inserted when it reaches this size…', 1),
    batchMaxWaitMs: int(1000, '…or when its oldest row has waited this long.', 1),
    batchBusyRowsPerSecond: int(
      1000,
      'A batch filling at this many rows a second or more (over its age so far) is not inserted at batchMaxWaitMs but waits while it keeps up that rate, up to batchBusyWaitMs.',
      1,
    ),
    batchBusyWaitMs: int(
      1000,
      'Longest wait of a batch filling fast: fewer, larger inserts under load (each writes a part to the events table and to every rollup) for more memory, the timeline trailing by up to this long. At or below batchMaxWaitMs (the default) batches wait batchMaxWaitMs whatever the rate.',
      1,
    ),
    maxBufferedRows: int(50_000, 'Rows held in memory (buffered plus being inserted) before consumption pauses; the back-pressure bound.', 1),
    insertTimeoutMs: int(30_000, 'Timeout of one ClickHouse request; a timed-out insert is retried with the same deduplication token.', 1),
    insertRetryMaxMs: int(30_000, 'Longest pause between insert retries while ClickHouse is unavailable (exponential from 200 ms).', 1),
    queryTimeoutMs: int(10_000, 'Timeout of one read-API query.', 1),
    maxStatsPoints: int(1500, 'Most time buckets one /v1/stats answer may hold; a longer range needs a coarser interval (400 otherwise).', 1),
    maxSearchDays: int(31, 'Widest from/to window of GET /v1/messages, in days.', 1),
  },
  'Analytics: ClickHouse sink and read API',
);
