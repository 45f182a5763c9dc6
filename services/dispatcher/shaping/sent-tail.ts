/**
 * A warm-up day counter shared by every dispatcher replica: each replica tails `email.events`
 * from the start of the UTC day (its own throwaway consumer group, no commits) and counts the
 * `sent` events per source address, whoever sent them. A message this replica just sent is
 * counted at once too (`add`) and kept for `lagMs` — until its own event has surely come back
 * through the tail — so the count errs toward capping an address a little early, never late.
 * After a restart the count is complete again once the tail has caught up (`caughtUp`).
 *
 * Only three fields of an event are read (type, at, source), leniently: the tail must not stop
 * on an event of a newer contract version.
 */
import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import { follower, LONE_READER } from '../../../shared/kafka/client.js';
import type { Logger } from 'pino';
import { Topics } from '../../../shared/topics.js';
import { utcDay, type SentCounter } from './warmup.js';

export class SharedSentCounter implements SentCounter {
  private day = '';
  private readonly fromTail = new Map<string, number>();
  private readonly local = new Map<string, number[]>();

  constructor(private readonly lagMs = 5_000) {}

  /** A `sent` event through `source` read from the tail (any replica's, this one's too). */
  seen(source: string, at: number): void {
    if (!this.roll(at)) return;
    this.fromTail.set(source, (this.fromTail.get(source) ?? 0) + 1);
  }

  /** A message this replica sent just now, before its event comes back through the tail. */
  add(source: string, at: number): void {
    if (!this.roll(at)) return;
    const list = this.local.get(source) ?? [];
    list.push(at);
    this.local.set(source, list);
  }

  count(source: string, at: number): number {
    this.roll(at);
    const list = (this.local.get(source) ?? []).filter((t) => t > at - this.lagMs);
    this.local.set(source, list);
    return (this.fromTail.get(source) ?? 0) + list.length;
  }

  /** Moves to `at`'s day when it is a later one; false for an earlier day (a late event). */
  private roll(at: number): boolean {
    const d = utcDay(at);
    if (d < this.day) return false;
    if (d > this.day) {
      this.day = d;
      this.fromTail.clear();
      this.local.clear();
    }
    return true;
  }
}

export interface SentTailOptions {
  kafka: Kafka;
  /** Counts `sent` events per source address (warm-up caps); absent without warm-up plans. */
  counter?: SharedSentCounter;
  /** Every event read (today's, every replica's): pause notices and sending-domain rates (ops-events.ts). */
  onEvent?: (event: Record<string, unknown>) => void;
  logger: Logger;
  groupPrefix: string;
  topic?: string;
  /** The source address of a `sent` event (default: its `source` field). */
  sourceOf?: (event: Record<string, unknown>) => string | undefined;
  now?: () => number;
}

export interface SentTail {
  /** True once every partition was read up to where it ended when the tail started. */
  caughtUp: Promise<boolean>;
  stop(): Promise<void>;
}

const defaultSourceOf = (e: Record<string, unknown>): string | undefined => (typeof e.source === 'string' ? e.source : undefined);

/** Starts tailing from the start of today (UTC); `caughtUp` waits at most `timeoutMs`. */
export async function startSentTail(o: SentTailOptions, timeoutMs = 30_000): Promise<SentTail> {
  const topic = o.topic ?? Topics.events;
  const now = o.now ?? Date.now;
  const sourceOf = o.sourceOf ?? defaultSourceOf;
  const groupId = `${o.groupPrefix}-sent-tail-${randomUUID()}`;
  const admin = o.kafka.admin();
  await admin.connect();
  const dayStart = Date.parse(`${utcDay(now())}T00:00:00Z`);
  const ends = new Map((await admin.fetchTopicOffsets(topic)).map((e) => [e.partition, BigInt(e.high)]));
  const from = await admin.fetchTopicOffsetsByTimestamp(topic, dayStart);
  const behind = new Set(from.filter((f) => BigInt(f.offset) < (ends.get(f.partition) ?? 0n)).map((f) => f.partition));
  let markCaughtUp: (v: boolean) => void = () => {};
  const caughtUp = new Promise<boolean>((resolve) => (markCaughtUp = resolve));
  if (behind.size === 0) markCaughtUp(true);
  const timer = setTimeout(() => markCaughtUp(false), timeoutMs);
  timer.unref();

  const consumer = o.kafka.consumer(follower({ groupId, ...LONE_READER }));
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const running = consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch }) => {
      for (const m of batch.messages) count(o, sourceOf, m.value, dayStart);
      if (behind.has(batch.partition) && BigInt(batch.lastOffset()) + 1n >= (ends.get(batch.partition) ?? 0n)) {
        behind.delete(batch.partition);
        if (behind.size === 0) markCaughtUp(true);
      }
    },
  });
  // `run` has created the group synchronously; seek before its first fetch.
  for (const f of from) consumer.seek({ topic, partition: f.partition, offset: f.offset });
  running.catch((err: unknown) => o.logger.warn({ err, topic }, 'warm-up tail of sent events stopped; counting this replica\'s sends only'));

  let stopped = false;
  return {
    caughtUp,
    async stop() {
      if (stopped) return;
      stopped = true;
      clearTimeout(timer);
      markCaughtUp(false);
      await consumer.disconnect().catch(() => undefined);
      await admin.deleteGroups([groupId]).catch(() => undefined);
      await admin.disconnect().catch(() => undefined);
    },
  };
}

/**
 * The event types the tail acts on (sends, bounces and complaints it counts, pause notices),
 * as the quoted JSON strings a record of that type must contain: every other record (accepted,
 * rendered, deferred, … — most of the stream) is skipped without being parsed, which keeps the
 * tail's cost off a dispatcher's event loop.
 */
const TAIL_TYPES = ['"sent"', '"bounced"', '"complained"', '"paused"', '"resumed"'].map((t) => Buffer.from(t));

function count(o: SentTailOptions, sourceOf: NonNullable<SentTailOptions['sourceOf']>, value: Buffer | null, dayStart: number): void {
  if (!value || !TAIL_TYPES.some((t) => value.includes(t))) return;
  let e: unknown;
  try {
    e = JSON.parse(value.toString('utf8'));
  } catch {
    return;
  }
  if (typeof e !== 'object' || e === null) return;
  const event = e as Record<string, unknown>;
  if (typeof event.at !== 'string' || !(Date.parse(event.at) >= dayStart)) return;
  try {
    o.onEvent?.(event);
  } catch (err) {
    o.logger.warn({ err }, 'an event of the tail could not be applied');
  }
  if (event.type !== 'sent') return;
  const source = sourceOf(event);
  if (source) o.counter?.seen(source, Date.parse(event.at));
}
