/**
 * The renderer's lanes: each priority's request topic and the shared `email.requested`, each
 * consumed by its own consumer group with its own concurrency and in-flight bytes, so a bulk
 * backlog never sits in front of a critical message in a partition or a semaphore.
 */
import type { EventEmitter } from 'node:events';
import type { Consumer, Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { PRIORITIES, type Priority } from '../../shared/config.js';
import { Topics } from '../../shared/topics.js';
import { StageConsumer, type DeadLetterSink } from '../../shared/kafka/stage-consumer.js';
import { preferringAssigners } from '../../shared/kafka/preferred-assigner.js';
import type { CriticalActivity } from '../../shared/critical-activity.js';
import type { Renderer } from './renderer.js';

/** A lane: the shared `email.requested` (no priority) or one priority's request topic. */
export interface RendererLane {
  priority?: Priority;
  topic: string;
  /** `<group>-<priority>`; the shared lane keeps the group name earlier versions committed under. */
  groupId: string;
}

export const RENDERER_GROUP_PREFIX = 'postline-renderer';

/** Every lane the renderer consumes, each with its own consumer group. */
export function rendererLanes(groupId = RENDERER_GROUP_PREFIX): RendererLane[] {
  return [...PRIORITIES.map((p) => ({ priority: p, topic: Topics.requestedFor(p), groupId: `${groupId}-${p}` })), { topic: Topics.requested, groupId }];
}

export interface LaneStage {
  lane: RendererLane;
  consumer: Consumer;
  stage: StageConsumer;
}

/**
 * One lane's consumer and StageConsumer around its Renderer. The renderer's and the stage's
 * events are forwarded to `renderedEvents` and `stageEvents`, whose metrics register once.
 */
export function laneStage(opts: {
  kafka: Kafka;
  lane: RendererLane;
  renderer: Renderer;
  /** Critical renders in flight in this process: the critical lane reports them, the others wait for them. */
  critical: CriticalActivity;
  /** Where records that fail permanently go (the lane's event publisher). */
  deadLetters: DeadLetterSink;
  concurrency: number;
  maxInFlightBytes: number;
  logger: Logger;
  rendererEvents: EventEmitter;
  stageEvents: EventEmitter;
  /** Takes every partition of the lane's group while it is a member (shared/kafka/preferred-assigner.ts). */
  preferred?: boolean;
}): LaneStage {
  const { lane, renderer } = opts;
  for (const e of ['rendered', 'failed']) renderer.on(e, (...a: unknown[]) => opts.rendererEvents.emit(e, ...a));
  // A short long-poll (kafkajs waits 5 s by default) bounds how long stopping waits for the
  // fetch in flight; records still arrive as soon as they are written.
  // A 1 s heartbeat under load (at rest kafkajs heartbeats only between fetches anyway): a member
  // busy with a batch hears of a rebalance (a second renderer joining or leaving) within ~1 s.
  const consumer = opts.kafka.consumer({ groupId: lane.groupId, partitionAssigners: preferringAssigners(opts.preferred === true), heartbeatInterval: 1000 });
  const stage = new StageConsumer({
    consumer,
    topics: [lane.topic],
    concurrency: opts.concurrency,
    maxInFlightBytes: opts.maxInFlightBytes,
    handle: lane.priority === 'critical' ? (r) => opts.critical.track(renderer.handle(r)) : async (r) => {
      await opts.critical.idle();
      return renderer.handle(r);
    },
    deadLetters: opts.deadLetters,
    logger: opts.logger.child({ lane: lane.priority ?? 'shared' }),
  });
  for (const e of ['processed', 'failed', 'deadLettered', 'committed', 'lag', 'backlog', 'rebalanced']) stage.on(e, (...a: unknown[]) => opts.stageEvents.emit(e, ...a));
  return { lane, consumer, stage };
}

/** Readiness: every lane's consumer is a member of its group (false after a crash, stop or disconnect). */
export function groupMembership(lanes: LaneStage[]): () => string | null {
  const joined = new Map(lanes.map((l) => [l.lane.groupId, false]));
  for (const { consumer, lane } of lanes) {
    consumer.on(consumer.events.GROUP_JOIN, () => joined.set(lane.groupId, true));
    for (const e of [consumer.events.CRASH, consumer.events.STOP, consumer.events.DISCONNECT]) consumer.on(e, () => joined.set(lane.groupId, false));
  }
  return () => {
    const out = [...joined].filter(([, j]) => !j).map(([g]) => g);
    return out.length === 0 ? null : `not a member of the consumer group: ${out.join(', ')}`;
  };
}
