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
import { instrumentScheduler } from './metrics.js';

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
}

export async function startScheduler(config: PostlineConfig, opts: SchedulerOptions = {}): Promise<{ shutdown: Shutdown; close(): Promise<boolean> }> {
  const rt = await startRuntime('scheduler', config, opts);
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
    const consumer = rt.kafka.consumer({ groupId: lane.groupId, maxWaitTimeInMs: 1000 });
    const own = lane.priority === 'critical' ? critical : rt;
    const scheduler = new Scheduler({
      consumer,
      topics: lane.topics,
      producer: own.producer,
      events: own.events,
      logger: rt.logger.child({ lane: lane.priority ?? 'shared' }),
    });
    for (const e of ['moved', 'invalid', 'held', 'processed', 'committed', 'lag', 'rebalanced']) scheduler.on(e, (...a: unknown[]) => laneEvents.emit(e, ...a));
    consumer.on(consumer.events.GROUP_JOIN, () => joined.add(lane.groupId));
    rt.watchConsumer(lane.groupId, consumer);
    consumers.push(consumer);
    schedulers.push(scheduler);
  }
  rt.readiness.consumer = () => {
    const waiting = lanes.filter((l) => !joined.has(l.groupId)).map((l) => l.groupId);
    return waiting.length === 0 ? null : `not yet in the consumer group: ${waiting.join(', ')}`;
  };
  rt.shutdown.add('stop schedulers', () => Promise.all(schedulers.map((s) => s.stop())));
  rt.shutdown.add('disconnect consumers', () => Promise.all(consumers.map((c) => c.disconnect())));
  rt.addFinalShutdownSteps();
  try {
    await Promise.all(consumers.map((c) => c.connect()));
    await Promise.all(schedulers.map((s) => s.start()));
    if (opts.ops !== false) await rt.startOps();
  } catch (err) {
    await rt.shutdown.run();
    throw err;
  }
  rt.logger.info({ groups: lanes.map((l) => l.groupId) }, 'scheduler running');
  return { shutdown: rt.shutdown, close: () => rt.shutdown.run() };
}

export async function main(): Promise<void> {
  await serviceMain('scheduler', (config) => startScheduler(config));
}
