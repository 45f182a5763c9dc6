/**
 * The suppression feeder: a stage on `email.events` (its own group, hosted in the dispatcher
 * process) that turns the events that suppress — recipient-class bounces, complaints,
 * unsubscribes (shared/suppressions/suppression-rules.ts) — into `email.suppressions` records.
 * The offset is committed only after the records are acked. An entry already on the list with
 * a stronger reason is left as it is (see `replaces`); the entries this feeder wrote in the
 * last minute are remembered too, so two events close together (a complaint, then an
 * unsubscribe) do not race the index's read of the first write. It reads as a `follower`: an
 * event becomes a suppression within about a second.
 */
import { EventEmitter } from 'node:events';
import type { Consumer, Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { EmailEventContract, type EmailEvent } from '../../shared/contracts/email-event.js';
import { SuppressionContract, suppressionKey } from '../../shared/contracts/suppression.js';
import type { BatchingProducer } from '../../shared/kafka/batching-producer.js';
import { StageConsumer, type DeadLetterSink, type StageRecord } from '../../shared/kafka/stage-consumer.js';
import { FOLLOWER_COMMIT_INTERVAL_MS, follower } from '../../shared/kafka/client.js';
import { Topics } from '../../shared/topics.js';
import { replaces, suppressionsFor, type SuppressionStrength } from '../../shared/suppressions/suppression-rules.js';
import { isRecipientClassBounce } from '../dispatcher/shaping/auto-pause.js';

/** Event types that can suppress: anything else is skipped before it is decoded. */
const FEEDING = [Buffer.from('bounced'), Buffer.from('complained'), Buffer.from('unsubscribed')];
const RECENT_MS = 60_000;

export interface SuppressionFeederDeps {
  /** The live entries (the dispatcher's index). */
  index: { strength(key: string, nowMs: number): SuppressionStrength | undefined };
  producer: BatchingProducer;
  logger: Logger;
  softBounceDays: number;
  now?: () => Date;
}

/**
 * A bounce from our own SMTP session carries its class once the classifier sets it; until
 * then (or from an older dispatcher) it is read from the reply, like the auto-pause does.
 */
function withBounceClass(e: EmailEvent): EmailEvent {
  if (e.type !== 'bounced' || e.bounceClass !== undefined || e.via !== undefined) return e;
  return isRecipientClassBounce(e.smtp?.code, e.smtp?.enhanced, e.smtp?.message) ? { ...e, bounceClass: 'recipient' } : e;
}

/** Emits 'written' (reason, n) and 'kept' (reason, n) for metrics. */
export class SuppressionFeeder extends EventEmitter {
  private readonly recent = new Map<string, { strength: SuppressionStrength; at: number }>();
  private readonly now: () => Date;

  constructor(private readonly deps: SuppressionFeederDeps) {
    super();
    this.now = deps.now ?? (() => new Date());
  }

  /** The StageConsumer handler: resolves once the record's suppressions are acked. */
  handle = async (record: StageRecord): Promise<void> => {
    const value = record.message.value;
    if (!value || !FEEDING.some((t) => value.includes(t))) return;
    let event: EmailEvent;
    try {
      event = EmailEventContract.decode(value);
    } catch {
      // Not ours to park: the analytics sink dead-letters invalid events.
      return;
    }
    const now = this.now();
    const nowMs = now.getTime();
    this.forget(nowMs);
    const writes = suppressionsFor(withBounceClass(event), { softBounceDays: this.deps.softBounceDays, now }).flatMap((s) => {
      const key = suppressionKey(s.tenant, s.address, s.list);
      const strength = { reason: s.reason, ...(s.expiresAt ? { expiresAtMs: Date.parse(s.expiresAt) } : {}) };
      const r = this.recent.get(key);
      const existing = r ? r.strength : this.deps.index.strength(key, nowMs);
      if (!replaces(existing, strength, nowMs)) {
        this.emit('kept', existing!.reason, 1);
        return [];
      }
      // Noted before the write, so an event handled meanwhile (another partition) compares with it.
      const mine = { strength, at: nowMs };
      this.recent.delete(key);
      this.recent.set(key, mine);
      return [{ s, key, mine }];
    });
    await Promise.all(
      writes.map(async ({ s, key, mine }) => {
        try {
          await this.deps.producer.send(Topics.suppressions, { key, value: SuppressionContract.encode(s) });
        } catch (err) {
          // Not written: the event is handled again, and must not find its own note.
          if (this.recent.get(key) === mine) this.recent.delete(key);
          throw err;
        }
        this.deps.logger.info({ messageId: s.cause?.messageId, tenant: s.tenant, reason: s.reason, category: s.category, list: s.list, via: s.cause?.via, expiresAt: s.expiresAt }, 'address suppressed');
        this.emit('written', s.reason, 1);
      }),
    );
  };

  private forget(nowMs: number): void {
    // Map order is insertion order: the oldest first.
    for (const [k, v] of this.recent) {
      if (v.at > nowMs - RECENT_MS) break;
      this.recent.delete(k);
    }
  }
}

export interface StartFeederOptions extends SuppressionFeederDeps {
  kafka: Kafka;
  groupId: string;
  deadLetters: DeadLetterSink;
}

/** A running feeder: `stop` stops consuming (committing what finished) and disconnects. */
export interface RunningFeeder {
  feeder: SuppressionFeeder;
  consumer: Consumer;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function createSuppressionFeeder(opts: StartFeederOptions): RunningFeeder {
  const feeder = new SuppressionFeeder(opts);
  const consumer = opts.kafka.consumer(follower({ groupId: opts.groupId }));
  const logger = opts.logger.child({ component: 'suppression-feeder' });
  const stage = new StageConsumer({
    consumer,
    topics: [Topics.events],
    concurrency: 64,
    handle: feeder.handle,
    deadLetters: opts.deadLetters,
    logger,
    // A new group reads what happened before it existed: bounces are not lost to a late start.
    fromBeginning: true,
    // Off the send path: suppressing twice after a crash is harmless.
    commitIntervalMs: FOLLOWER_COMMIT_INTERVAL_MS,
    batchEndCommit: 'interval',
  });
  let started = false;
  return {
    feeder,
    consumer,
    async start() {
      await consumer.connect();
      await stage.start();
      started = true;
    },
    async stop() {
      try {
        if (started) await stage.stop();
      } finally {
        await consumer.disconnect();
      }
    },
  };
}
