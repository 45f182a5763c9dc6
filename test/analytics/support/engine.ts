/**
 * The in-process ClickHouse engine for tests: one per test process (the engine binds a single
 * data directory per process), in a temporary directory removed at the end, with a fresh
 * migrated database per test so tests never see each other's rows.
 */
import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import { openClickHouse } from '../../../services/analytics/clickhouse.js';
import { migrate } from '../../../services/analytics/schema/migrator.js';
import { toEventRow, type EventRow } from '../../../services/analytics/sink/event-row.js';
import { clickHouseEventsWriter } from '../../../services/analytics/sink/events-writer.js';
import type { EmailEvent } from '../../../shared/contracts/email-event.js';
import { tempDir } from '../../helpers/broker.js';

export interface TestEngine {
  client: ClickHouseClient;
  dataDir: string;
  /** A new database with the analytics schema applied; returns its name. */
  freshDatabase(prefix?: string): Promise<string>;
  /** Closes the engine and removes its directory. */
  destroy(): Promise<void>;
}

export async function openTestEngine(): Promise<TestEngine> {
  const dataDir = tempDir('postline-chdb-');
  const { client } = await openClickHouse({ url: '', user: '', password: '', dataDir, requestTimeoutMs: 30_000 });
  return {
    client,
    dataDir,
    async freshDatabase(prefix = 'test') {
      const database = `${prefix}_${randomBytes(4).toString('hex')}`;
      await migrate(client, { database, retentionDays: 90, rollupRetentionDays: 400 });
      return database;
    },
    async destroy() {
      await client.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Runs a query and returns its rows. */
export async function select<T = Record<string, unknown>>(client: ClickHouseClient, query: string, params: Record<string, unknown> = {}): Promise<T[]> {
  const rs = await client.query({ query, query_params: params, format: 'JSONEachRow' });
  return rs.json<T>();
}

/** Loads events straight into a database (no Kafka), as the sink would store them. */
export async function loadEvents(client: ClickHouseClient, database: string, events: EmailEvent[], topic = 'fixture'): Promise<EventRow[]> {
  const writer = clickHouseEventsWriter(client, database);
  const rows = events.map((e, i) => toEventRow(e, { topic, partition: 0, offset: String(i) }));
  for (let i = 0; i < rows.length; i += 10_000) await writer.insert(rows.slice(i, i + 10_000), `fixture-${randomBytes(8).toString('hex')}`);
  return rows;
}
