/** What every request handler needs from the broker, passed in rather than imported. */
import type { Logger } from 'pino';
import type { LogManager, Topic } from './log/log-manager.js';
import type { GroupCoordinator } from './groups/group-coordinator.js';
import type { StateStore } from './state-store.js';
import type { GroupCommit } from './log/group-commit.js';
import type { BrokerMetrics } from './metrics.js';
import type { Durability } from './log/partition-log.js';

export interface BrokerOptions {
  /** Interface to listen on (default 127.0.0.1). */
  host: string;
  /** TCP port; 0 picks a free one (default 9092 from the CLI, 0 in-process). */
  port: number;
  /** Host name clients are told to connect to (default: `host`). */
  advertisedHost?: string;
  dataDir: string;
  nodeId: number;
  /** Create unknown topics on Metadata requests (default true). */
  autoCreateTopics: boolean;
  /** Partition count for auto-created topics (default 1). */
  defaultPartitions: number;
  /** `group`: acks=1 and acks=-1 wait for the next fsync and consumers see only fsynced data (default). `none`: no fsync until shutdown. */
  durability: Durability;
  /** Largest request frame accepted (default 100 MiB). */
  maxRequestBytes: number;
  /** How often retention and compaction run (default 30 s). */
  maintenanceIntervalMs: number;
  minSessionTimeoutMs: number;
  maxSessionTimeoutMs: number;
  initialRebalanceDelayMs: number;
  /** Topic defaults in Kafka naming (e.g. `{"retention.ms": "86400000"}`). */
  topicDefaults: Record<string, string>;
  /**
   * Kafka's `offsets.retention.minutes` (default 7 days): a group with no members whose last
   * commit is older than this is deleted with its offsets.
   */
  offsetsRetentionMinutes: number;
  /** Most topics that get their own metric label (default 500); the rest count as `(other)`. */
  metricsMaxTopics: number;
}

export interface BrokerContext {
  options: BrokerOptions;
  nodeId: number;
  clusterId: string;
  advertised: { host: string; port: number };
  logs: LogManager;
  groups: GroupCoordinator;
  store: StateStore;
  commit: GroupCommit;
  logger: Logger;
  metrics: BrokerMetrics;
  /** Aborted when the broker shuts down, releasing long-polls. */
  shutdown: AbortSignal;
  /** The topic, created with defaults when auto-creation is on and the name is legal. */
  topicOrCreate(name: string): Topic | undefined;
}
