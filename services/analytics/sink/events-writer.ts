/**
 * The sink's ClickHouse side: insert a batch of rows idempotently, and tell which records of a
 * partition are already stored. Kept behind an interface so tests can put a failing or
 * blocking ClickHouse in front of the real one.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { EVENT_COLUMNS, toEventValues, type EventRow } from './event-row.js';

export interface EventsWriter {
  /**
   * Inserts the rows in one INSERT. Retrying with the same rows and the same token is a
   * no-op for whatever a previous attempt already stored (the events table and every rollup).
   */
  insert(rows: EventRow[], token: string): Promise<void>;
  /** Offsets at or above `fromOffset` of a topic-partition that already have rows. */
  storedOffsets(topic: string, partition: number, fromOffset: string): Promise<Set<string>>;
  /** Resolves when ClickHouse answers; rejects otherwise. */
  ping(): Promise<void>;
}

export function clickHouseEventsWriter(client: ClickHouseClient, database: string): EventsWriter {
  const table = `${database}.events`;
  return {
    async insert(rows, token) {
      if (rows.length === 0) return;
      await client.insert({
        table,
        values: rows.map(toEventValues),
        columns: [...EVENT_COLUMNS],
        format: 'JSONCompactEachRow',
        clickhouse_settings: {
          insert_deduplication_token: token,
          insert_deduplicate: 1,
          // Rollups written by the materialized views drop the retried block too (24.x+ and the
          // embedded 26.x engine; older servers skip the views when the source block is a duplicate).
          deduplicate_blocks_in_dependent_materialized_views: 1,
          // Event timestamps are RFC 3339 with a zone ("…T…Z" or "+02:00").
          date_time_input_format: 'best_effort',
          // A synchronous insert: the sink commits offsets only after it returns.
          async_insert: 0,
        },
      });
    },
    async storedOffsets(topic, partition, fromOffset) {
      // Offsets only grow, so the minmax index on kafka_offset skips all but the newest granules.
      const rs = await client.query({
        query: `SELECT toString(kafka_offset) AS o FROM ${table}
                WHERE kafka_topic = {topic:String} AND kafka_partition = {partition:UInt16} AND kafka_offset >= {from:UInt64}`,
        query_params: { topic, partition, from: fromOffset },
        format: 'JSONEachRow',
      });
      const rows = await rs.json<{ o: string }>();
      return new Set(rows.map((r) => r.o));
    },
    async ping() {
      const r = await client.ping();
      if (!r.success) throw r.error;
    },
  };
}
