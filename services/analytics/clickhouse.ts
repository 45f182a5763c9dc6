/**
 * One way to get a ClickHouse client, for both backends: a ClickHouse server over HTTP
 * (production) or the in-process engine (chDB) persisting to a data directory (the embedded
 * default and tests). Everything above this file sees the same `@clickhouse/client` API and
 * runs the same SQL.
 *
 * The embedded engine binds one data directory per process and a directory must not be opened
 * by two processes, so only the analytics service opens it; everything else reads through its
 * HTTP API.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createClient, type ClickHouseClient, type ClickHouseClientConfigOptions, type ClickHouseSettings } from '@clickhouse/client';

type ClientConnection = NonNullable<ClickHouseClientConfigOptions['connection']>;

export interface ClickHouseTarget {
  /** Server URL; empty for the embedded engine. */
  url: string;
  user: string;
  password: string;
  /** Data directory of the embedded engine. */
  dataDir: string;
  requestTimeoutMs: number;
}

export interface OpenedClickHouse {
  client: ClickHouseClient;
  backend: 'server' | 'embedded';
  /** Where it points, for logs (no credentials). */
  location: string;
}

/**
 * Settings every query on a server runs with: 64-bit integers as JSON numbers, as the embedded
 * engine already answers (the server quotes them by default), so results read the same. Not
 * sent to the embedded engine, where each setting would cost a SET statement per query.
 */
export const COMMON_SETTINGS: ClickHouseSettings = {
  output_format_json_quote_64bit_integers: 0,
};

export async function openClickHouse(target: ClickHouseTarget): Promise<OpenedClickHouse> {
  if (target.url) {
    const client = createClient({
      url: target.url,
      username: target.user,
      password: target.password,
      request_timeout: target.requestTimeoutMs,
      clickhouse_settings: COMMON_SETTINGS,
    });
    const u = new URL(target.url);
    return { client, backend: 'server', location: `${u.protocol}//${u.host}${u.pathname}` };
  }
  const dir = path.resolve(target.dataDir);
  fs.mkdirSync(dir, { recursive: true });
  // Loaded only when used: the engine is a large native library a server deployment never needs.
  const { createChdbConnection } = await import('chdb/connection');
  // chdb types its connection against @clickhouse/client-common, which @clickhouse/client
  // bundles a copy of: the same interface from two declaration files, hence the cast.
  const connection = createChdbConnection({ path: dir }) as unknown as ClientConnection;
  const client = createClient({ connection });
  return { client, backend: 'embedded', location: dir };
}
