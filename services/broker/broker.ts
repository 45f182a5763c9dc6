/**
 * `startBroker()`: the embedded single-node Kafka-compatible broker, wired from its parts.
 * Used in-process by tests and `npm start`, and by `postline broker` as a standalone process.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import pino, { type Logger } from 'pino';
import { Registry } from 'prom-client';
import { APIS } from './protocol/apis.js';
import { KafkaServer, type Handler } from './server.js';
import { LogManager } from './log/log-manager.js';
import { GroupCommit } from './log/group-commit.js';
import { syncDir } from './log/sync-dir.js';
import { parseTopicConfig } from './log/topic-config.js';
import { cleanPartition, needsCleaning } from './log/log-cleaner.js';
import { GroupCoordinator } from './groups/group-coordinator.js';
import { StateStore } from './state-store.js';
import { createBrokerMetrics } from './metrics.js';
import { groupKey } from './handlers/offsets.js';
import { produceHandlers } from './handlers/produce.js';
import { fetchHandlers } from './handlers/fetch.js';
import { metadataHandlers } from './handlers/metadata.js';
import { offsetHandlers } from './handlers/offsets.js';
import { expireGroups, groupHandlers } from './handlers/groups.js';
import { adminHandlers } from './handlers/admin.js';
import { configHandlers } from './handlers/configs.js';
import type { BrokerContext, BrokerOptions } from './context.js';

export type { BrokerOptions } from './context.js';

export const DEFAULT_BROKER_OPTIONS: BrokerOptions = {
  host: '127.0.0.1',
  port: 0,
  dataDir: './data/broker',
  nodeId: 1,
  autoCreateTopics: true,
  defaultPartitions: 1,
  durability: 'group',
  maxRequestBytes: 100 * 1024 * 1024,
  maintenanceIntervalMs: 30_000,
  minSessionTimeoutMs: 1000,
  maxSessionTimeoutMs: 30 * 60_000,
  initialRebalanceDelayMs: 0,
  topicDefaults: {},
  offsetsRetentionMinutes: 7 * 24 * 60,
  metricsMaxTopics: 500,
};

export interface Broker {
  /** `host:port` for clients' bootstrap list. */
  bootstrap: string;
  port: number;
  registry: Registry;
  /**
   * Runs retention, compaction and consumer-group expiry now (they also run every
   * `maintenanceIntervalMs`), as if the clock read `now`.
   */
  runMaintenance(now?: number): void;
  /** Stops accepting, releases long-polls, flushes every log and closes files. Safe to call twice. */
  close(): Promise<void>;
}

export interface StartBrokerOptions extends Partial<BrokerOptions> {
  logger?: Logger;
  registry?: Registry;
}

const CLEAN_SHUTDOWN = '.clean-shutdown';
const LOCK = '.lock';

export async function startBroker(input: StartBrokerOptions = {}): Promise<Broker> {
  const options: BrokerOptions = { ...DEFAULT_BROKER_OPTIONS, ...input };
  const logger = input.logger ?? pino({ name: 'broker', level: process.env.LOG_LEVEL ?? 'info' });
  const registry = input.registry ?? new Registry();
  const dataDir = path.resolve(options.dataDir);
  fs.mkdirSync(dataDir, { recursive: true });
  acquireLock(dataDir);

  const marker = path.join(dataDir, CLEAN_SHUTDOWN);
  const unclean = fs.existsSync(path.join(dataDir, 'topics')) && !fs.existsSync(marker);
  if (fs.existsSync(marker)) {
    fs.rmSync(marker);
    // Durably: a marker resurrected by a power cut would skip recovery after the next crash.
    syncDir(dataDir);
  }

  let metricsRef: ReturnType<typeof createBrokerMetrics> | undefined;
  const commit = new GroupCommit((ms) => metricsRef?.fsyncSeconds.observe(ms / 1000));
  const defaults = parseTopicConfig(options.topicDefaults);
  const logs = new LogManager(dataDir, defaults, options.durability, commit);
  const started = performance.now();
  logs.load(unclean);
  const store = new StateStore(path.join(dataDir, 'state'), () => commit.markDirty(store));
  const groups = new GroupCoordinator(options);
  for (const [k, v] of store.entries<{ protocolType: string; generation: number; at?: number }>(groupKey(''))) {
    // Groups stored before `at` was recorded start their retention now.
    groups.restore(k.slice(groupKey('').length), v.protocolType, v.generation, v.at);
  }
  let clusterId = store.get<string>('clusterId');
  if (!clusterId) {
    clusterId = randomBytes(16).toString('base64url').slice(0, 22);
    store.set([['clusterId', clusterId]]);
  }
  const metrics = createBrokerMetrics(registry, () => logs, () => groups, options.metricsMaxTopics);
  metricsRef = metrics;
  const shutdown = new AbortController();
  // Every parked long-poll fetch listens for shutdown: one per idle consumer, dozens at once.
  setMaxListeners(0, shutdown.signal);

  const ctx: BrokerContext = {
    options,
    nodeId: options.nodeId,
    clusterId,
    advertised: { host: options.advertisedHost ?? options.host, port: options.port },
    logs,
    groups,
    store,
    commit,
    logger,
    metrics,
    shutdown: shutdown.signal,
    topicOrCreate(name) {
      const existing = logs.get(name);
      if (existing || !options.autoCreateTopics) return existing;
      const created = logs.create(name, options.defaultPartitions);
      logger.info({ topic: name, partitions: options.defaultPartitions }, 'topic auto-created');
      return created;
    },
  };

  groups.on('rebalance', (groupId, generation, members) => logger.info({ group: groupId, generation, members }, 'group rebalanced'));
  groups.on('memberExpired', (groupId, memberId) => logger.info({ group: groupId, memberId }, 'group member session expired'));
  groups.on('memberDisconnected', (groupId, memberId) => logger.info({ group: groupId, memberId }, 'group member left: its connection closed'));

  let server: KafkaServer;
  const handlers = new Map<number, Handler>([
    ...produceHandlers(ctx),
    ...fetchHandlers(ctx),
    ...metadataHandlers(ctx, () => server.apiVersionsBody()),
    ...offsetHandlers(ctx),
    ...groupHandlers(ctx),
    ...adminHandlers(ctx),
    ...configHandlers(ctx),
  ]);
  server = new KafkaServer(handlers, APIS, { maxRequestBytes: options.maxRequestBytes, maxInFlight: 256 });
  server.on('request', (api: string, _v: number, ms: number, bytes: number) => {
    metrics.requests.inc({ api });
    metrics.requestSeconds.observe({ api }, ms / 1000);
    metrics.bytesIn.inc(bytes);
  });
  server.on('bytesOut', (n: number) => metrics.bytesOut.inc(n));
  server.on('connectionError', (id: number, host: string, reason: string) => {
    metrics.connectionErrors.inc();
    logger.warn({ connection: id, clientHost: host, reason }, 'closing connection');
  });
  server.on('unsupported', (apiKey: number, apiVersion: number, clientId: string) =>
    logger.debug({ apiKey, apiVersion, clientId }, 'unsupported API or version'),
  );
  // A closed connection's group members leave at once (group-coordinator.ts).
  server.on('connectionClosed', (id: number) => groups.connectionClosed(id));

  const port = await server.listen(options.port, options.host);
  ctx.advertised.port = port;

  const runMaintenance = (now = Date.now()): void => {
    try {
      const expired = expireGroups(ctx, now);
      if (expired.length > 0) logger.info({ groups: expired, offsetsRetentionMinutes: options.offsetsRetentionMinutes }, 'expired empty consumer groups');
    } catch (err) {
      logger.error({ err }, 'consumer group expiry failed');
    }
    for (const p of logs.allPartitions()) {
      try {
        const deleted = p.enforceRetention(now);
        if (deleted > 0) logger.info({ topic: p.topic, partition: p.partition, segments: deleted, logStartOffset: p.logStartOffset }, 'retention deleted segments');
        if (needsCleaning(p, now)) {
          const r = cleanPartition(p, now);
          if (r.recordsRemoved > 0) logger.info({ topic: p.topic, partition: p.partition, ...r }, 'compacted');
        }
      } catch (err) {
        logger.error({ topic: p.topic, partition: p.partition, err }, 'log maintenance failed');
      }
    }
  };
  const maintenance = setInterval(() => runMaintenance(), options.maintenanceIntervalMs);
  maintenance.unref();

  const bootstrap = `${ctx.advertised.host}:${port}`;
  logger.info({ bootstrap, dataDir, recovered: unclean, topics: logs.topics.size, loadMs: Math.round(performance.now() - started) }, 'broker ready');

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      clearInterval(maintenance);
      shutdown.abort();
      const steps: Array<[string, () => unknown]> = [
        ['server', () => server.close()],
        ['groups', () => groups.close()],
        ['flush', () => commit.flushAll()],
        ['logs', () => logs.close()],
        ['state', () => store.close()],
      ];
      // Every step runs even if an earlier one failed; the clean marker only if all succeeded.
      let ok = true;
      for (const [name, step] of steps) {
        try {
          await step();
        } catch (err) {
          ok = false;
          logger.error({ err, step: name }, 'broker shutdown step failed');
        }
      }
      if (ok) fs.writeFileSync(marker, String(Date.now()));
      releaseLock(dataDir);
      logger.info({ bootstrap }, 'broker stopped');
    })();
    return closing;
  };

  return { bootstrap, port, registry, runMaintenance, close };
}

/** One broker per data directory: a second one would corrupt the logs. */
function acquireLock(dataDir: string): void {
  const lock = path.join(dataDir, LOCK);
  try {
    fs.writeFileSync(lock, String(process.pid), { flag: 'wx' });
  } catch {
    const pid = Number(fs.readFileSync(lock, 'utf8'));
    if (pid && pid !== process.pid && isAlive(pid)) throw new Error(`data directory ${dataDir} is in use by process ${pid}`);
    fs.writeFileSync(lock, String(process.pid));
  }
}

function releaseLock(dataDir: string): void {
  fs.rmSync(path.join(dataDir, LOCK), { force: true });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
