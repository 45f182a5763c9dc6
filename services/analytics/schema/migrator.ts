/**
 * Applies the versioned migrations and reconciles retention. Safe to run at every start, from
 * several replicas at once (statements are idempotent; a doubly recorded version is harmless)
 * and from `postline migrate` as a one-shot job.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { Logger } from 'pino';
import { MIGRATIONS, retentionTargets, type Migration, type SchemaParams } from './migrations.js';
import { PermanentError } from '../../../shared/errors.js';

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

export interface MigrateResult {
  /** Versions applied by this call (empty when the schema was already current). */
  applied: number[];
  /** Tables whose TTL was changed to match the configured retention. */
  retentionChanged: string[];
}

export function assertIdentifier(name: string, what = 'database'): void {
  if (!IDENTIFIER.test(name)) throw new PermanentError('INVALID_IDENTIFIER', `${what} name "${name}" is not a plain identifier`);
}

async function appliedVersions(client: ClickHouseClient, db: string): Promise<Set<number>> {
  const rs = await client.query({ query: `SELECT DISTINCT version FROM ${db}.schema_migrations`, format: 'JSONEachRow' });
  const rows = await rs.json<{ version: number | string }>();
  return new Set(rows.map((r) => Number(r.version)));
}

async function runMigration(client: ClickHouseClient, m: Migration, params: SchemaParams): Promise<void> {
  for (const query of m.statements(params)) await client.command({ query });
  await client.insert({
    table: `${params.database}.schema_migrations`,
    values: [{ version: m.version, name: m.name }],
    format: 'JSONEachRow',
  });
}

/** Brings the schema to the newest version; returns what it did. */
export async function migrate(client: ClickHouseClient, params: SchemaParams, logger?: Logger, migrations: Migration[] = MIGRATIONS): Promise<MigrateResult> {
  const db = params.database;
  assertIdentifier(db);
  await client.command({ query: `CREATE DATABASE IF NOT EXISTS ${db}` });
  await client.command({
    query: `CREATE TABLE IF NOT EXISTS ${db}.schema_migrations
      (version UInt32, name String, applied_at DateTime('UTC') DEFAULT now())
      ENGINE = MergeTree ORDER BY version`,
  });
  const done = await appliedVersions(client, db);
  const applied: number[] = [];
  for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
    if (done.has(m.version)) continue;
    logger?.info({ version: m.version, migration: m.name, database: db }, 'applying migration');
    await runMigration(client, m, params);
    applied.push(m.version);
  }
  const retentionChanged = await applyRetention(client, params, logger);
  return { applied, retentionChanged };
}

/**
 * The TTL days currently set on a table, read back from its engine definition; null without a
 * TTL, undefined when the table does not exist (a migration list that stops before creating it).
 */
async function currentTtlDays(client: ClickHouseClient, db: string, table: string): Promise<number | null | undefined> {
  const rs = await client.query({
    query: 'SELECT engine_full FROM system.tables WHERE database = {db:String} AND name = {table:String}',
    query_params: { db, table },
    format: 'JSONEachRow',
  });
  const rows = await rs.json<{ engine_full: string }>();
  if (rows.length === 0) return undefined;
  const m = rows[0].engine_full.match(/TTL .*toIntervalDay\((\d+)\)/);
  return m ? Number(m[1]) : null;
}

/**
 * Sets each table's TTL to the configured retention when it differs. Parts are whole days
 * (`ttl_only_drop_parts`), so a shorter retention drops old partitions cheaply.
 */
export async function applyRetention(client: ClickHouseClient, params: SchemaParams, logger?: Logger): Promise<string[]> {
  const changed: string[] = [];
  for (const t of retentionTargets(params)) {
    if (!Number.isInteger(t.days) || t.days < 1) throw new PermanentError('INVALID_RETENTION', `retention for ${t.table} must be a positive integer (got ${t.days})`);
    const current = await currentTtlDays(client, params.database, t.table);
    if (current === t.days || current === undefined) continue;
    logger?.info({ table: t.table, from: current, to: t.days }, 'changing retention');
    await client.command({ query: `ALTER TABLE ${params.database}.${t.table} MODIFY TTL ${t.ttl(t.days)}` });
    changed.push(t.table);
  }
  return changed;
}
