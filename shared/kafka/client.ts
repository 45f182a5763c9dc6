/**
 * The one place that constructs kafkajs clients, so every stage talks to Kafka (or the embedded
 * broker) the same way: same timeouts, logs through pino, topics created the same way.
 */
import { Kafka, logLevel, type LogEntry, type Admin, type ConsumerConfig, type KafkaConfig } from 'kafkajs';
import type { Logger } from 'pino';
import type { PostlineConfig } from '../config.js';
import type { TopicSpec } from '../topics.js';
import './codecs.js';
// kafkajs 2.2.4 re-arms a 1 ms timer on every idle connection; this import stops it.
import './request-queue-timer.js';
// A consumer's stop, resume or seek ends its waiting fetch instead of waiting it out.
import { paceFetches } from './fetch-wake.js';
// The encoders of the first produce and offset commit, loaded now rather than on the first message.
import './kafkajs-preload.js';
import { keyPartitioner } from './key-partitioner.js';

const LEVELS: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

const QUIET = ['KafkaJS v2.0.0 switched default partitioner', 'Limiting retries for the idempotent producer'];

/** kafkajs's text for REBALANCE_IN_PROGRESS, the answer a member gets while its group rebalances. */
const REBALANCING = 'The group is rebalancing, so a rejoin is needed';

/**
 * The level a kafkajs log line is written at, or undefined to drop it. A group rebalancing (a
 * replica, or npm start's second renderer, joining or leaving) is normal operation, yet kafkajs
 * logs each member's heartbeat answered REBALANCE_IN_PROGRESS as an error and its rejoin as a
 * warning — four errors and four warnings from one renderer when the second one starts. The
 * answer goes to debug and the rejoin to info (the broker logs each rebalance at info too); any
 * other error answer stays an error.
 */
export function kafkajsLogLevel(level: number, message: string, error?: unknown): 'error' | 'warn' | 'info' | 'debug' | undefined {
  // Known, deliberate choices that kafkajs warns about at every start: the default
  // partitioner is the one we want, and producer retries are bounded on purpose (ingest
  // answers 503 instead of hanging; the broker still dedupes retried batches).
  if (level === logLevel.WARN && QUIET.some((q) => message.startsWith(q))) return undefined;
  if (level === logLevel.ERROR && message.startsWith('Response ') && error === REBALANCING) return 'debug';
  if (level === logLevel.WARN && message === 'The group is rebalancing, re-joining') return 'info';
  return LEVELS[level] ?? 'info';
}

export function createKafka(config: PostlineConfig['kafka'], service: string, logger: Logger): Kafka {
  const log = logger.child({ component: 'kafkajs' });
  const options: KafkaConfig = {
    clientId: `${config.clientId}-${service}`,
    brokers: config.brokers,
    connectionTimeout: config.connectionTimeoutMs,
    requestTimeout: config.requestTimeoutMs,
    // kafkajs INFO is chatty (every join/leave); keep it at debug unless it matters.
    logLevel: logLevel.WARN,
    logCreator:
      () =>
      ({ level, log: entry }: LogEntry) => {
        const { message, ...rest } = entry;
        const to = kafkajsLogLevel(level, message, rest.error);
        if (to) log[to](rest, message);
      },
    retry: { retries: 8, initialRetryTime: 100, maxRetryTime: 5000 },
  };
  const kafka = new Kafka(options);
  // Every consumer's group session (unless it sets its own): a member that stops heartbeating
  // without closing its connection (a hung process) keeps its partitions until it lapses.
  // Each consumer has its own client id, `<prefix>-<service>.<group>`: the Postline broker ties
  // a member's fetches to it by client id, to end them when its group rebalances
  // (services/broker/groups/group-coordinator.ts), so long fetch waits cost no rebalance time.
  const heartbeatInterval = Math.min(3000, Math.floor(config.sessionTimeoutMs / 3));
  // A follower's fetch asks for a batch and waits kafka.followerMaxWaitMs for it (see follower()).
  const followerFetch = (c: ConsumerConfig) =>
    FOLLOWS in c ? { minBytes: c.minBytes ?? FOLLOWER_MIN_BYTES, maxWaitTimeInMs: fetchMaxWait({ fetchMaxWaitMs: config.followerMaxWaitMs, sessionTimeoutMs: config.sessionTimeoutMs }, c.sessionTimeout) } : {};
  // Every producer partitions as kafkajs's default does, with a cheaper hash (key-partitioner.ts).
  const producer = kafka.producer.bind(kafka);
  kafka.producer = (c) => producer({ createPartitioner: keyPartitioner, ...c });
  kafka.consumer = (c) =>
    new Kafka({ ...options, clientId: `${options.clientId}.${c.groupId}` }).consumer({
      sessionTimeout: config.sessionTimeoutMs,
      heartbeatInterval,
      maxWaitTimeInMs: fetchMaxWait(config, c.sessionTimeout),
      ...c,
      ...followerFetch(c),
    });
  return kafka;
}

/**
 * How long a consumer's fetch may wait for records (`kafka.fetchMaxWaitMs`). The broker answers
 * as soon as a record is appended, so a longer wait only spares idle wake-ups (~30 consumer
 * groups polling every 100-500 ms were much of an idle install's CPU). On the Postline broker a
 * stop (fetch-wake.ts) and a rebalance of the member's group end the wait; on Kafka both wait
 * for it. kafkajs sends heartbeats between fetches, so the wait stays under a third of the
 * session timeout.
 */
export function fetchMaxWait(config: Pick<PostlineConfig['kafka'], 'fetchMaxWaitMs' | 'sessionTimeoutMs'>, sessionTimeoutMs = config.sessionTimeoutMs): number {
  return Math.max(10, Math.min(config.fetchMaxWaitMs, Math.floor(sessionTimeoutMs / 3)));
}

/**
 * Consumer settings for a lone reader: a throwaway group of one member that commits nothing (a
 * compacted table, a tail of a topic), one per process and topic. No other member ever waits
 * for its session, so the session can be long, and with it the heartbeats and fetch waits: a
 * record still arrives at once (the broker answers a waiting fetch when one is appended) and a
 * stop does not wait for the fetch on the Postline broker (`fetch-wake.ts`; on Kafka it waits up
 * to `maxWaitTimeInMs`). About twenty such readers in `npm start` each woke the stages process
 * and the broker once a second with a fetch and every 3 s with a heartbeat; at 15 s waits they
 * were still 2.5 of the ~6 requests a second an idle install made. A member whose process dies
 * leaves with its connection (the Postline broker); the session only bounds a hung one.
 */
export const LONE_READER = { sessionTimeout: 180_000, heartbeatInterval: 60_000, maxWaitTimeInMs: 60_000 } as const;

/** Marks a consumer config as a follower's (read by createKafka's consumer). */
const FOLLOWS = Symbol('follower');
const FOLLOWER_MIN_BYTES = 64 << 10;

/**
 * How often a follower that commits (a StageConsumer with `batchEndCommit: 'interval'`) commits
 * what it finished, per partition: each of its fetches brings a batch per partition of
 * `email.events`, and committing each as it ends was an offset commit (a request, a write and an
 * fsync of the broker's offset journal) per partition per fetch.
 */
export const FOLLOWER_COMMIT_INTERVAL_MS = 5000;

/**
 * A reader off the send path: a consumer of `email.events` that no message waits for (webhooks,
 * the suppression feeder, the dispatchers' tail, analytics; not the console's tail, whose live
 * overview promises a new message within a second). Each message
 * makes three or more events, and each event woke every such reader for a fetch, a decode and
 * often an offset commit — in `npm start` all in the stages process's event loop, beside the
 * renderer's and the dispatcher's work on the next hop of the same message. So a follower's fetch
 * asks for 64 KiB (unless it sets its own `minBytes`) and waits `kafka.followerMaxWaitMs` for it:
 * 1 s by default; 10 s under npm start, where the Postline broker answers such a fetch at most
 * 500 ms after any record arrived (services/broker/handlers/fetch.ts), so an idle reader wakes
 * every 10 s and an event still reaches it within half a second. While events keep coming its
 * fetches are also paced (fetch-wake.ts): after one that brought records, the next waits out
 * `everyMs` first. Returns the consumer config to use.
 */
export function follower<C extends { groupId: string }>(c: C, everyMs = 1000): C {
  paceFetches(c.groupId, everyMs);
  return Object.assign(c, { [FOLLOWS]: true });
}

/** Creates the topics that are missing; existing topics are left as they are. */
export async function ensureTopics(admin: Admin, specs: TopicSpec[], replicationFactor: number): Promise<string[]> {
  const existing = new Set(await admin.listTopics());
  const missing = specs.filter((s) => !existing.has(s.topic));
  if (missing.length === 0) return [];
  await admin.createTopics({
    waitForLeaders: true,
    topics: missing.map((s) => ({ ...s, replicationFactor })),
  });
  return missing.map((s) => s.topic);
}
