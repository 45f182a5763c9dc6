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
  const { Session } = await import('chdb');
  const { createChdbConnection } = await import('chdb/connection');
  // The first session on a directory starts the process's one engine with its arguments (later
  // ones share it and their arguments are ignored): opened for that, then closed once the
  // client's connection holds the engine.
  const configFile = path.join(dir, 'postline-engine.xml');
  fs.writeFileSync(configFile, EMBEDDED_SERVER_CONFIG);
  const starter = new Session(dir, { connectionArgs: [`--config-file=${configFile}`] });
  // chdb types its connection against @clickhouse/client-common, which @clickhouse/client
  // bundles a copy of: the same interface from two declaration files, hence the cast.
  const connection = createChdbConnection({ path: dir }) as unknown as ClientConnection;
  starter.close();
  const client = createClient({ connection });
  return { client, backend: 'embedded', location: dir };
}

/**
 * Server configuration of the embedded engine (written to `postline-engine.xml` in its data
 * directory at each start). The memory worker samples the allocator's statistics to correct the
 * engine's memory tracking, every 100 ms by default: ~0.15–0.2 % of a core in a process that
 * mostly waits, for limits the embedded engine does not set.
 *
 * Left at the library's default, measured: its allocator's page decay (jemalloc's
 * `dirty_decay_ms`, 5 s; JE_MALLOC_CONF). Returning freed pages at once lowered analytics' peak
 * under npm start's 20,000-message batch by 30–80 MB but cost 16–30 % more of its CPU per message
 * and ~1–5 ms more CPU per message at 10/s (each insert's buffers faulted in again), with a worse
 * p99 (`npm run bench -- embedded`, two alternated pairs).
 */
export const EMBEDDED_SERVER_CONFIG = `<clickhouse>
  <memory_worker_period_ms>5000</memory_worker_period_ms>
</clickhouse>
`;
