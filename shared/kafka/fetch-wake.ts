/**
 * Lets a kafkajs consumer stop (and resume, and seek) without waiting out its long-polling fetch.
 *
 * kafkajs 2.2.4's `consumer.stop()` (and `disconnect()`, which calls it) waits for the fetch in
 * flight before it leaves the group, so every stop cost up to the fetch wait
 * (`kafka.fetchMaxWaitMs`): with the long waits an idle install needs, CI's integration tests
 * spent much of their time there. kafkajs sends fetches on a connection of their own (the
 * second of each broker's pool), so right after the stop has begun (the fetcher no longer
 * loops) this sends an empty Fetch with no wait on that connection. Responses go out in request
 * order, so the Postline broker ends the pending long-poll at once rather than hold the second
 * answer back (services/broker/handlers/fetch.ts); Kafka itself answers the long-poll at its
 * wait as before, so this costs nothing there. The nudge repeats while the stop is pending, for
 * a fetch that was being prepared just as the stop began.
 *
 * When every partition of a consumer is paused (a stage stopping lets its records in flight
 * finish with its partitions paused; the scheduler pauses until due times), kafkajs does not
 * fetch but sleeps the whole fetch wait before it looks again. That sleep here ends early on
 * a stop, `resume` and `seek`, which nudge a waiting fetch too, so a resumed or re-positioned
 * partition is fetched at once rather than after the wait: consumers that hold partitions until
 * a due time need no short fetch wait.
 *
 * A consumer with no partition assigned at all (another member of its group is preferred:
 * preferred-assigner.ts) sleeps at most UNASSIGNED_WAIT_MS, so it hears of the rebalance that
 * gives partitions back within about a heartbeat interval, not a whole fetch wait.
 *
 * A paced consumer (`paceFetches`: the followers of `email.events` and the analytics sink, which
 * want events in batches, not a fetch per event; see `follower()` in client.ts) fetches at most
 * once per interval while records keep coming: after a fetch that brought records, the next
 * waits out the rest of the interval first (a stop, resume or seek ends that pause too).
 *
 * Importing this module patches kafkajs's internal Runner and ConsumerGroup classes (every
 * consumer of the process, whichever Kafka client made it); shared/kafka/client.ts imports it.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** The parts of kafkajs's internal Cluster / Broker / ConnectionPool this relies on. */
interface BrokerInternals {
  connectionPool?: { pool?: Array<{ isConnected(): boolean }> };
  fetch(request: { replicaId: number; isolationLevel: number; maxWaitTime: number; minBytes: number; maxBytes: number; topics: [] }): Promise<unknown>;
}
interface ClusterInternals {
  brokerPool?: { brokers?: Record<string, BrokerInternals> };
}

/** The parts of kafkajs's internal ConsumerGroup this relies on. */
interface ConsumerGroupInternals {
  cluster: ClusterInternals;
  groupId: string;
  maxWaitTime: number;
  subscriptionState: { assigned(): Array<{ topic: string; partitions: number[] }> };
  filterPartitionsByNode(nodeId: number, tps: Array<{ topic: string; partitions: number[] }>): Array<{ topic: string; partitions: number[] }>;
  getActiveTopicPartitions(): Record<string, Set<number> | undefined>;
  fetch(nodeId: number): Promise<unknown[]>;
  resume(topicPartitions: Array<{ topic: string; partitions?: number[] }>): void;
  seek(target: { topic: string; partition: number; offset: string }): void;
}

/** The parts of kafkajs's internal Runner this relies on. */
interface RunnerInternals {
  running: boolean;
  consumerGroup?: ConsumerGroupInternals | null;
  stop(): Promise<void>;
}

/** kafkajs's `ConsumerGroup` and `Runner` classes (`src/consumer/consumerGroup.js`, `runner.js`). */
const ConsumerGroup = require('kafkajs/src/consumer/consumerGroup.js') as { prototype: ConsumerGroupInternals };
const Runner = require('kafkajs/src/consumer/runner.js') as { prototype: RunnerInternals };

/** Longest sleep of a consumer that has no partition assigned (kafkajs sleeps its fetch wait). */
export const UNASSIGNED_WAIT_MS = 1000;

/** How often the empty fetch is sent again while a stop is pending. */
const NUDGE_INTERVAL_MS = 200;

/** Ends the all-paused sleeps of the consumer group on this cluster (one consumer per cluster). */
const sleepers = new WeakMap<object, Set<() => void>>();

/** The fetch connection of each broker the consumer's cluster has connected. */
function fetchingBrokers(cluster: ClusterInternals): BrokerInternals[] {
  return Object.values(cluster.brokerPool?.brokers ?? {}).filter((b) => b.connectionPool?.pool?.[1]?.isConnected() === true);
}

function nudge(cluster: ClusterInternals): void {
  const wake = sleepers.get(cluster);
  if (wake) for (const fn of [...wake]) fn();
  for (const broker of fetchingBrokers(cluster)) {
    // Errors (a connection closing meanwhile) change nothing: the stop goes on either way.
    broker.fetch({ replicaId: -1, isolationLevel: 1, maxWaitTime: 0, minBytes: 0, maxBytes: 1, topics: [] }).catch(() => undefined);
  }
}

/** True when none of the partitions this node leads for the consumer would be fetched. */
function nothingToFetch(group: ConsumerGroupInternals, nodeId: number): boolean {
  const active = group.getActiveTopicPartitions();
  const mine = group.filterPartitionsByNode(nodeId, group.subscriptionState.assigned());
  return !mine.some(({ topic, partitions }) => partitions.some((p) => active[topic]?.has(p) === true));
}

/** kafkajs's own sleep when there is nothing to fetch, ended early by a nudge. */
function sleepUnlessNudged(cluster: object, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const set = sleepers.get(cluster) ?? new Set<() => void>();
    sleepers.set(cluster, set);
    const done = (): void => {
      clearTimeout(timer);
      set.delete(done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    set.add(done);
  });
}

/** Paced consumer groups of this process: the interval, and when a fetch last brought records. */
const paced = new Map<string, { everyMs: number; lastRecordsAt: number }>();

/** Paces the fetches of this process's consumers of `groupId` (see the module comment). */
export function paceFetches(groupId: string, everyMs: number): void {
  paced.set(groupId, { everyMs, lastRecordsAt: 0 });
}

const fetch = ConsumerGroup.prototype.fetch;
ConsumerGroup.prototype.fetch = async function (this: ConsumerGroupInternals, nodeId: number): Promise<unknown[]> {
  const pace = paced.get(this.groupId);
  const pause = pace ? pace.lastRecordsAt + pace.everyMs - Date.now() : 0;
  if (pause > 0) await sleepUnlessNudged(this.cluster, pause);
  if (nothingToFetch(this, nodeId)) {
    // With no partition at all (a preferred member holds them all: preferred-assigner.ts), the
    // member must notice soon when they come back: kafkajs hears of a rebalance only from the
    // heartbeat it sends after this sleep.
    const unassigned = this.subscriptionState.assigned().every(({ partitions }) => partitions.length === 0);
    await sleepUnlessNudged(this.cluster, unassigned ? Math.min(this.maxWaitTime, UNASSIGNED_WAIT_MS) : this.maxWaitTime);
    return [];
  }
  const batches = await fetch.call(this, nodeId);
  if (pace && (batches as Array<{ isEmpty(): boolean }>).some((b) => !b.isEmpty())) pace.lastRecordsAt = Date.now();
  return batches;
};

// `consumer.resume` and the resume function of eachBatch's `pause()` both end here.
const resume = ConsumerGroup.prototype.resume;
ConsumerGroup.prototype.resume = function (this: ConsumerGroupInternals, topicPartitions): void {
  resume.call(this, topicPartitions);
  nudge(this.cluster);
};

// `consumer.seek`: the next fetch reads from there, so the waiting one ends (a re-read, or a stage
// restarting a partition at a failed record, comes at once rather than after the fetch wait).
const seek = ConsumerGroup.prototype.seek;
ConsumerGroup.prototype.seek = function (this: ConsumerGroupInternals, target): void {
  seek.call(this, target);
  nudge(this.cluster);
};

// `consumer.stop()` and `disconnect()` stop the runner; kafkajs makes a new one (and a new
// consumer group object) on the next `run`.
const stop = Runner.prototype.stop;
Runner.prototype.stop = async function (this: RunnerInternals): Promise<void> {
  const group = this.consumerGroup;
  if (!this.running || !group) return stop.call(this);
  // A fetch being prepared (offsets being resolved) then asks for no wait, or sleeps none when
  // all its partitions are paused.
  group.maxWaitTime = 0;
  const stopping = stop.call(this);
  nudge(group.cluster);
  const timer = setInterval(() => nudge(group.cluster), NUDGE_INTERVAL_MS);
  try {
    await stopping;
  } finally {
    clearInterval(timer);
  }
};
