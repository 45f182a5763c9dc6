/**
 * Large synthetic event volumes generated inside ClickHouse (INSERT … SELECT FROM numbers), so
 * a 10 M-event month loads in about a minute instead of being produced through Kafka. Five
 * events per message — accepted, rendered, then sent (or deferred then sent, or bounced),
 * then an open or click — over three tenants, eight domains, three priorities and pools. The
 * rows go through the events table, so the materialized views build the rollups as they would
 * for real traffic.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { EVENT_COLUMNS } from '../../../services/analytics/sink/event-row.js';

export interface VolumeOptions {
  events: number;
  /** The data spans [endMs - days, endMs). */
  endMs: number;
  days: number;
}

export const VOLUME_TENANTS = ['acme', 'globex', 'initech'];
const PER_MESSAGE = 5;

/** Message ids are `vol-<n>` for n in [0, messages); each belongs to VOLUME_TENANTS[hash % 3]. */
export function volumeMessages(events: number): number {
  return Math.floor(events / PER_MESSAGE);
}

export async function insertVolume(client: ClickHouseClient, database: string, o: VolumeOptions): Promise<{ messages: number; events: number }> {
  const messages = volumeMessages(o.events);
  const start = o.endMs - o.days * 86_400_000;
  const stepMs = Math.max(1, Math.floor((o.endMs - start) / messages));
  const delivery = "type IN ('sent', 'deferred', 'bounced')";
  await client.command({
    query: `
      INSERT INTO ${database}.events (${EVENT_COLUMNS.join(', ')})
      SELECT
        concat('vol-ev-', toString(number)) AS event_id,
        multiIf(k = 0, 'accepted', k = 1, 'rendered',
                k = 2, if(h % 10 = 0, 'deferred', if(h % 33 = 0, 'bounced', 'sent')),
                k = 3, if(h % 10 = 0, 'sent', 'opened'), 'clicked') AS type,
        concat('vol-', toString(m)) AS message_id,
        [${VOLUME_TENANTS.map((t) => `'${t}'`).join(', ')}][h % 3 + 1] AS tenant,
        fromUnixTimestamp64Milli(toInt64(${start} + m * ${stepMs} + k * (100 + h % 900)
          + if(k >= 3, if(h % 10 = 0, 60000, 3600000), 0)), 'UTC') AS at,
        'volume' AS stage,
        ['critical', 'transactional', 'bulk'][intDiv(h, 3) % 3 + 1] AS priority,
        [concat('user', toString(m), '@', ['gmail.com', 'yahoo.com', 'outlook.com', 'example.org', 'icloud.com', 'web.de', 'proton.me', 'corp.example'][intDiv(h, 9) % 8 + 1])] AS recipients,
        if(${delivery}, ['gmail.com', 'yahoo.com', 'outlook.com', 'example.org', 'icloud.com', 'web.de', 'proton.me', 'corp.example'][intDiv(h, 9) % 8 + 1], '') AS domain,
        if(${delivery}, ['transactional', 'marketing', 'dedicated'][intDiv(h, 72) % 3 + 1], '') AS pool,
        toUInt16(if(${delivery}, if(k = 3, 2, 1), 0)) AS attempt,
        toUInt16(multiIf(type = 'sent', 250, type = 'deferred', 451, type = 'bounced', 550, 0)) AS smtp_code,
        if(type = 'bounced', '5.1.1', '') AS smtp_enhanced,
        multiIf(type = 'sent', '2.0.0 OK', type = 'bounced', 'User unknown', type = 'deferred', 'Try again later', '') AS smtp_message,
        '' AS smtp_host, '' AS reason, NULL AS next_attempt_at,
        if(type = 'sent', toFloat64(30 + h % 200), NULL) AS latency_ms, NULL AS connection_reused,
        if(h % 2 = 0, ['newsletter'], ['receipt', 'billing']) AS tags,
        if(${delivery}, fromUnixTimestamp64Milli(toInt64(${start} + m * ${stepMs}), 'UTC'), NULL) AS accepted_at,
        if(type = 'sent', ['TLSv1.3', 'TLSv1.3', 'TLSv1.2', 'none'][h % 4 + 1], '') AS tls,
        -- Positional (EVENT_COLUMNS order); five of the eight domains go direct (mx route: a site
        -- and a source address), the rest through the relay.
        if(site != '', concat('192.0.2.', toString(10 + intDiv(h, 72) % 3 * 4 + h % 4)), '') AS source_ip,
        if(${delivery}, ['google', 'yahoo', 'outlook', '', 'apple', 'webde', '', 'proton'][intDiv(h, 9) % 8 + 1], '') AS site,
        '' AS bounce_category,
        if(type = 'rendered', 'example.com', '') AS dkim_domain,
        if(type = 'rendered', 's1', '') AS dkim_selector,
        'volume' AS kafka_topic, toUInt16(m % 6) AS kafka_partition, number AS kafka_offset
      FROM (
        SELECT number, intDiv(number, ${PER_MESSAGE}) AS m, number % ${PER_MESSAGE} AS k, cityHash64(intDiv(number, ${PER_MESSAGE})) AS h
        FROM numbers(${messages * PER_MESSAGE})
      )`,
    clickhouse_settings: { max_partitions_per_insert_block: '1000' },
  });
  return { messages, events: messages * PER_MESSAGE };
}

/** Rows and bytes on disk per table of a database (active parts). */
export async function tableSizes(client: ClickHouseClient, database: string): Promise<Array<{ table: string; rows: number; bytes: number }>> {
  const rs = await client.query({
    query: `SELECT table, sum(rows) AS rows, sum(bytes_on_disk) AS bytes FROM system.parts
            WHERE database = {db:String} AND active GROUP BY table ORDER BY bytes DESC`,
    query_params: { db: database },
    format: 'JSONEachRow',
  });
  return (await rs.json<{ table: string; rows: number; bytes: number }>()).map((r) => ({ table: r.table, rows: Number(r.rows), bytes: Number(r.bytes) }));
}
