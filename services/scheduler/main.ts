/**
 * `postline scheduler`: moves retry records back to dispatch when they are due.
 * `startScheduler` runs it in-process (tests, tools).
 *
 * Lanes: each priority's retry tiers (`email.retry.<priority>.<tier>`) are held by their own
 * consumer group, so a bulk campaign's deferrals never sit in front of a critical retry; the
 * critical lane also produces through its own producer. One more lane drains the shared
 * `email.retry.<tier>` topics earlier versions wrote, under the group they committed with, so an
 * upgrade loses nothing.
 */
import { EventEmitter } from 'node:events';
import type { Consumer } from 'kafkajs';
import { PRIORITIES, type PostlineConfig, type Priority } from '../../shared/config.js';
import type { Shutdown } from '../../shared/lifecycle.js';
import { serviceMain, startRuntime, type RuntimeOptions } from '../../shared/service-runtime.js';
import { RETRY_TIERS, Topics } from '../../shared/topics.js';
import { instrumentStageConsumer } from '../../shared/metrics.js';
import type { StageConsumer } from '../../shared/kafka/stage-consumer.js';
import { Scheduler } from './scheduler.js';
import { instrumentScheduler, instrumentScheduledLane } from './metrics.js';
import { ScheduledLane } from './scheduled-lane.js';
import { buildCancelApi } from './cancel-api.js';
import { CompactedTable } from '../../shared/kafka/compacted-table.js';
import { CancellationContract, type Cancellation } from '../../shared/contracts/cancellation.js';

export const SCHEDULER_GROUP = 'postline-scheduler';

/** A lane: one priority's retry tiers, or (no priority) the shared tiers of earlier versions. */
export interface SchedulerLane {
  priority?: Priority;
  topics: string[];
  groupId: string;
}

/** Every lane the scheduler holds, each with its own consumer group. */
export function schedulerLanes(groupId = SCHEDULER_GROUP): SchedulerLane[] {
  return [
    ...PRIORITIES.map((p) => ({ priority: p, topics: RETRY_TIERS.map((t) => Topics.retryFor(p, t)), groupId: `${groupId}-${p}` })),
    { topics: RETRY_TIERS.map((t) => Topics.retry(t)), groupId },
  ];
}

export interface SchedulerOptions extends RuntimeOptions {
  ops?: boolean;
  /** Consumer group prefix (default `postline-scheduler`). */
  groupId?: string;
  /** Serve the cancellation API on `schedule.host:port` (default true). */
  cancelApi?: boolean;
}

export interface SchedulerHandle {
  shutdown: Shutdown;
  close(): Promise<boolean>;
  /** The scheduled lane (tests, bench: its book's size). */
  scheduled: ScheduledLane;
  /** `http://host:port` of the cancellation API when it listens. */
  cancelAddress?: string;
}

/** Least linger of the scheduler's producers (see startScheduler). */
export const RELEASE_LINGER_MS = 2;

export async function startScheduler(config: PostlineConfig, opts: SchedulerOptions = {}): Promise<SchedulerHandle> {
  // Releases come in bursts (a tier's or a schedule's records falling due together): its producer
  // waits at least 2 ms to fill a request even where kafka.producerLingerMs is 0 (the default, for
  // single-message latency elsewhere). Measured with `npm run bench -- schedule` (100,000 due
  // within 3 s, quiet): release lateness p99 3.3 s (1.7–3.9) with 2 ms against 8.3 s (2.8–13.6)
  // with 0 — a request per few records costs more than their wait; a scheduled message is
  // judged to the second, not the millisecond.
  const rt = await startRuntime('scheduler', config, { ...opts, producer: { lingerMs: Math.max(RELEASE_LINGER_MS, config.kafka.producerLingerMs), ...opts.producer } });
  // Every replica reads every cancellation: retries of a cancelled message may sit in any lane.
  let scheduled: ScheduledLane | undefined;
  const cancellations = new CompactedTable<Cancellation>({
    kafka: rt.kafka,
    producer: rt.producer,
    topic: Topics.cancellations,
    logger: rt.logger,
    decode: (v) => CancellationContract.decode(v),
    encode: (v) => CancellationContract.encode(v),
    onChange: (_key, c) => c && scheduled?.applyCancellation(c),
  });
  const lanes = schedulerLanes(opts.groupId ?? SCHEDULER_GROUP);
  // Critical retries go back through a producer of their own: never behind bulk's batches.
  const critical = await rt.dedicatedProducer();
  const consumers: Consumer[] = [];
  const schedulers: Scheduler[] = [];
  // The metrics register once per registry: every lane's events go through one emitter.
  const laneEvents = new EventEmitter();
  instrumentScheduler(laneEvents, rt.registry);
  instrumentStageConsumer('scheduler', laneEvents as unknown as StageConsumer, rt.registry);
  const joined = new Set<string>();
  for (const lane of lanes) {
    const consumer = rt.kafka.consumer({ groupId: lane.groupId });
    const own = lane.priority === 'critical' ? critical : rt;
    const scheduler = new Scheduler({
      consumer,
      topics: lane.topics,
      producer: own.producer,
      events: own.events,
      logger: rt.logger.child({ lane: lane.priority ?? 'shared' }),
      cancellations,
    });
    for (const e of ['cancelled', 'moved', 'invalid', 'held', 'processed', 'committed', 'lag', 'rebalanced']) scheduler.on(e, (...a: unknown[]) => laneEvents.emit(e, ...a));
    consumer.on(consumer.events.GROUP_JOIN, () => joined.add(lane.groupId));
    rt.watchConsumer(lane.groupId, consumer);
    consumers.push(consumer);
    schedulers.push(scheduler);
  }
  const scheduledConsumer = rt.kafka.consumer({ groupId: config.schedule.groupId });
  scheduled = new ScheduledLane({ consumer: scheduledConsumer, producer: rt.producer, events: rt.events, logger: rt.logger.child({ lane: 'scheduled' }), horizonMs: config.schedule.horizonMs, cancellations });
  instrumentScheduledLane(scheduled, rt.registry);
  scheduledConsumer.on(scheduledConsumer.events.GROUP_JOIN, () => joined.add(config.schedule.groupId));
  rt.watchConsumer(config.schedule.groupId, scheduledConsumer);
  consumers.push(scheduledConsumer);
  const cancelApi = buildCancelApi({
    lane: scheduled,
    logger: rt.logger,
    record: async (c) => {
      await cancellations.put(c.messageId, c);
    },
  });
  rt.readiness.consumer = () => {
    const waiting = [...lanes.map((l) => l.groupId), config.schedule.groupId].filter((g) => !joined.has(g));
    return waiting.length === 0 ? null : `not yet in the consumer group: ${waiting.join(', ')}`;
  };
  rt.shutdown.add('stop cancellation API', () => cancelApi.close());
  rt.shutdown.add('stop schedulers', () => Promise.all([...schedulers.map((s) => s.stop()), scheduled.stop()]));
  // Together (each waits out its fetch in flight).
  rt.shutdown.add('disconnect consumers, stop cancellation table', () => Promise.all([...consumers.map((c) => c.disconnect()), cancellations.stop()]));
  rt.addFinalShutdownSteps();
  let cancelAddress: string | undefined;
  try {
    // Loaded first: a restart must not release a request cancelled before it.
    await cancellations.start();
    await Promise.all(consumers.map((c) => c.connect()));
    await Promise.all([...schedulers.map((s) => s.start()), scheduled.start()]);
    if (opts.ops !== false) await rt.startOps();
    if (opts.cancelApi !== false) cancelAddress = await cancelApi.listen({ host: config.schedule.host, port: config.schedule.port });
  } catch (err) {
    await rt.shutdown.run();
    throw err;
  }
  rt.logger.info({ groups: [...lanes.map((l) => l.groupId), config.schedule.groupId], cancelApi: cancelAddress }, 'scheduler running');
  return { shutdown: rt.shutdown, close: () => rt.shutdown.run(), scheduled, cancelAddress };
}

export async function main(): Promise<void> {
  await serviceMain('scheduler', (config) => startScheduler(config));
}
